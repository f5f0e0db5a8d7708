"""Where a webhook may go: no request forgery against our own network.

Checked on every attempt, after DNS resolution (itself bounded by the connect
timeout: `resolve`): in production only https, and
only globally routable addresses (no loopback, private, shared 100.64/10,
link-local where cloud metadata lives, site-local, multicast or other special
ranges); in development, loopback is allowed (tests and a receiver on the same
machine). The rules the address itself shows (scheme, port, allow-list, an IP
literal's range) are jobstore.callback_rules', which submit applies too; here
every address the host resolves to must pass. The caller connects to the
address checked here, never to a second resolution (DNS rebinding).
"""

import logging
import socket
import threading
from typing import Any

from api_contracts.models import is_ip_literal
from jobstore.callback_rules import WebhookRefused, check_address, check_address_form
from worker.runtime.settings import Settings

__all__ = ["WebhookRefused", "check_address", "check_destination", "resolve"]
log = logging.getLogger(__name__)


def check_destination(url: str, settings: Settings) -> str:
    """The address to connect to, once every address of the host passed."""
    production = settings.environment == "production"
    host, port = check_address_form(url, settings.webhooks, production)
    try:
        infos = resolve(host, port, settings.webhooks.connect_timeout_seconds)
    except TimeoutError:
        raise  # the attempt's to count as a timeout (retried), not a refusal
    except OSError as exc:
        log.info("webhook host %r does not resolve: %s", host, exc)
        raise WebhookRefused(_not_public(host)) from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise WebhookRefused(_not_public(host))
    for address in addresses:
        try:
            check_address(address, production)
        except WebhookRefused:
            if is_ip_literal(host):  # the tenant's own address: saying it tells nothing
                raise
            log.info("webhook host %r resolves to %s: refused", host, address)
            raise WebhookRefused(_not_public(host)) from None
    return addresses[0]


def resolve(host: str, port: int, seconds: float) -> list[Any]:
    """getaddrinfo, given up after `seconds`. It blocks in C with no timeout
    of its own, so a tenant's slow name server would hold a delivery thread
    past the attempt's deadline and its claim's lease (and the delivery would
    be sent twice). The lookup runs on a daemon thread that is left to finish
    on its own when late: it holds no socket and no slot, only itself, and
    the system resolver gives up within its own timeouts."""
    answer: list[Any] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP))
        except OSError as exc:
            answer.append(exc)

    thread = threading.Thread(target=lookup, name="backdrop-webhook-dns", daemon=True)
    thread.start()
    thread.join(seconds)
    if not answer:
        raise TimeoutError(f"host {host!r} did not resolve within {seconds:g} s")
    if isinstance(answer[0], OSError):
        raise answer[0]
    return list(answer[0])


def _not_public(host: str) -> str:
    """One answer for a name that does not resolve and one that resolves
    inside: the tenant sees it, and two answers would let a tenant map our
    network's names (which exist, and where they point)."""
    return f"host {host!r} does not resolve to a public address"
