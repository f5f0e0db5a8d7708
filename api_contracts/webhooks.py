"""Signed webhooks: what Backdrop sends and what a receiving app checks.

Every delivery carries `Backdrop-Signature: t=<unix time>,v1=<hex>`, an
HMAC-SHA256 with the tenant's secret over "<t>.<raw body>" (as Stripe does);
while the secret is rotated, one v1 per secret, and any that holds verifies.
The body is frozen when the event happens and sent byte for byte on every
attempt; its "id", the event id, is inside what is signed, so a receiver that
keeps the ids it has seen drops duplicates and replays on the signed id alone
(delivery is at least once). `Backdrop-Event-Id` repeats it for routing and
must agree with the body.

    from api_contracts.webhooks import verified_event
    event = verified_event(secret, request.headers, request.body)
    if event is None:
        return 400
    if event["id"] in seen: ...
"""

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

SIGNATURE_HEADER = "Backdrop-Signature"
EVENT_ID_HEADER = "Backdrop-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300  # older signatures are refused (replays)


def sign(secret: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for `body`, at `timestamp` (now): one
    v1 per secret, so while a tenant's secret is rotated a receiver holding
    either the old or the new one verifies (it accepts any v1 that holds)."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str) else list(secret)
    digests = [hmac.new(k.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
               for k in keys]  # fmt: skip
    return ",".join([f"t={t}", *(f"v1={d}" for d in digests)])


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS, now: float | None = None,
) -> bool:  # fmt: skip
    """True when `body` is an event signed with `secret` within `tolerance`
    seconds, whose event id header (if any) is the signed one. `headers` may
    use any capitalization."""
    return verified_event(secret, headers, body, tolerance, now) is not None


def verified_event(
    secret: str, headers: Mapping[str, str], body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS, now: float | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """The event (`id`, `type`, `data`) when the signature holds, else None."""
    if not _signed(secret, _header(headers, SIGNATURE_HEADER), body, tolerance, now):
        return None
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        return None
    # The header is not signed: one that disagrees with the body was changed.
    given_id = _header(headers, EVENT_ID_HEADER)
    if given_id and not hmac.compare_digest(given_id.encode(), event["id"].encode()):
        return None
    return event


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def _signed(secret: str, value: str, body: bytes, tolerance: float, now: float | None) -> bool:
    pairs = [p.split("=", 1) for p in value.split(",") if "=" in p]
    try:
        t = int(dict(pairs)["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected.encode(), v.encode()) for k, v in pairs if k == "v1")
