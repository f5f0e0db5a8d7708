"""Where a webhook may go: no request forgery against our own network.

Checked on every attempt, after DNS resolution (itself bounded by the connect
timeout: worker.service.webhook_dns): in production only https, and
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

from api_contracts.models import is_ip_literal
from jobstore.callback_rules import WebhookRefused, check_address, check_address_form
from worker.runtime.settings import Settings
from worker.service.webhook_dns import Resolver

__all__ = ["WebhookRefused", "check_address", "check_destination"]
log = logging.getLogger(__name__)


def check_destination(url: str, settings: Settings, resolver: Resolver | None = None,
                      tenant: str = "") -> str:  # fmt: skip
    """The address to connect to, once every address of the host passed.
    resolver: the worker's (it bounds the lookups still running); a fresh
    one otherwise."""
    production = settings.environment == "production"
    host, port = check_address_form(url, settings.webhooks, production)
    resolver = resolver or Resolver.for_settings(settings.webhooks)
    try:
        infos = resolver.resolve(host, port, settings.webhooks.connect_timeout_seconds, tenant)
    except TimeoutError:
        raise  # the attempt's to count as a timeout (tried again), not a refusal
    except (OSError, ValueError) as exc:  # ValueError: a name IDNA cannot encode
        if isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN:
            raise ConnectionError("no DNS answer for now") from None  # try again later
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


def _not_public(host: str) -> str:
    """One answer for a name that does not resolve and one that resolves
    inside: the tenant sees it, and two answers would let a tenant map our
    network's names (which exist, and where they point)."""
    return f"host {host!r} does not resolve to a public address"
