"""Signed webhooks: what Backdrop sends and what a receiving app checks.

Every delivery carries `Backdrop-Signature: t=<unix time>,v1=<hex>`, an
HMAC-SHA256 with the tenant's secret over "<t>.<raw body>" (as Stripe does),
and `Backdrop-Event-Id`, the same for every attempt of one event, so a
receiver can drop duplicates (delivery is at least once).

    from api_contracts.webhooks import verify_webhook
    if not verify_webhook(secret, request.headers, request.body):
        return 400
"""

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "Backdrop-Signature"
EVENT_ID_HEADER = "Backdrop-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300  # older signatures are refused (replays)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for `body`, at `timestamp` (now)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS, now: float | None = None,
) -> bool:  # fmt: skip
    """True when `body` was signed with `secret` within `tolerance` seconds.
    `headers` may use any capitalization."""
    value = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
    parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    given = [v for k, v in (p.split("=", 1) for p in value.split(",") if "=" in p) if k == "v1"]
    return any(hmac.compare_digest(expected.encode(), g.encode()) for g in given)
