"""Where a webhook may go: no request forgery against our own network.

Checked on every attempt, after DNS resolution: in production only https, and
only globally routable addresses (no loopback, private, shared 100.64/10,
link-local where cloud metadata lives, site-local, multicast or other special
ranges); in development, loopback is allowed (tests and a receiver on the same
machine). An IPv6 address that carries an IPv4 one (mapped, compatible,
translated, NAT64, 6to4, Teredo) is judged by the IPv4 address it reaches.
An optional allow-list of host names. The caller connects to the address
checked here, never to a second resolution (DNS rebinding).
"""

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from api_contracts.models import is_ip_literal
from worker.runtime.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
# RFC 8215, local-use translation: its prefix length is the operator's, so the
# IPv4 address inside cannot be located; never a public receiver.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, still routed inside some sites
log = logging.getLogger(__name__)


class WebhookRefused(Exception):
    """The callback address is not one Backdrop will call."""


def check_destination(url: str, settings: Settings) -> str:
    """The address to connect to, once every address of the host passed."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a malformed address (submit refuses these; old records)
        raise WebhookRefused(f"malformed callback address: {exc}") from None
    production = settings.environment == "production"
    if parts.scheme != "https" and (production or parts.scheme != "http"):
        raise WebhookRefused(f"scheme {parts.scheme!r} refused (https only in production)")
    if not host:
        raise WebhookRefused("no host in the callback address")
    if production and (port or 443) not in settings.webhooks.allow_ports:
        raise WebhookRefused(f"port {port} refused (allowed: {settings.webhooks.allow_ports})")
    allowed = settings.webhooks.allow_hosts
    if allowed and host.lower() not in {h.lower() for h in allowed}:
        raise WebhookRefused(f"host {host!r} is not on the allow-list")
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)  # fmt: skip
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


def _not_public(host: str) -> str:
    """One answer for a name that does not resolve and one that resolves
    inside: the tenant sees it, and two answers would let a tenant map our
    network's names (which exist, and where they point)."""
    return f"host {host!r} does not resolve to a public address"


def check_address(text: str, production: bool) -> None:
    """Refuse an address that is not a public one (loopback passes in development)."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if address in _NAT64_LOCAL or address in _SITE_LOCAL:
        raise WebhookRefused(f"address {address} is not public")
    for reached in reached_addresses(address):
        if reached.is_loopback and not production:
            continue
        if not reached.is_global or reached.is_multicast:
            raise WebhookRefused(f"address {address} is not public")


def reached_addresses(address: IPAddress) -> list[IPAddress]:
    """The addresses a packet to `address` ends up at: the IPv4 ones an IPv6
    address embeds (a translator or tunnel delivers it there), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    packed = address.packed
    last32 = ipaddress.IPv4Address(packed[12:])
    if address.ipv4_mapped or address in _NAT64:  # ::ffff:a.b.c.d, 64:ff9b::a.b.c.d
        return [last32]
    if packed[:8] == bytes(8) and packed[8:12] == b"\xff\xff\x00\x00":  # ::ffff:0:a.b.c.d
        return [last32]
    if packed[:12] == bytes(12) and int(address) > 1:  # ::a.b.c.d (compatible); not :: or ::1
        return [last32]
    if address.sixtofour:
        return [address.sixtofour]
    if address.teredo:  # (server, client): both must be public
        return list(address.teredo)
    return [address]
