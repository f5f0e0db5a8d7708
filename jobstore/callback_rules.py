"""Where a completion webhook may point, as far as its address alone tells.

One model, read from BACKDROP_WEBHOOKS__ALLOW_HOSTS / __ALLOW_PORTS by the
workers' settings and the gateway's alike: a callback the workers would never
call (in production plain http, a port off the list; a host off the
allow-list; an IP address that is not public, written as a literal or in
inet_aton's old forms, in development too, loopback aside) is refused at
submit (422, nothing queued, no quota spent) instead of failing every
delivery attempt for three hours. What a host
name resolves to is the worker's check, on every attempt, since DNS can change
after submit (worker.service.webhook_guard); submit never resolves a name, so
its answer tells a tenant nothing about our network's names.

An IPv6 address that carries an IPv4 one (mapped, compatible, translated,
NAT64, 6to4, Teredo) is judged by the IPv4 address it reaches.
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import is_ip_literal, sendable_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
# RFC 8215, local-use translation: its prefix length is the operator's, so the
# IPv4 address inside cannot be located; never a public receiver.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, still routed inside some sites
# Never a public receiver, named here since `is_global` follows the
# interpreter's tables: Python before 3.11.10 / 3.12.4 calls most of
# 192.0.0.0/24 (IETF protocol assignments; 192.0.0.192 is a cloud metadata
# address) global, and newer reservations (3fff::/20 documentation, 5f00::/16
# SRv6) are global to every release before them.
_RESERVED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4",
    "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16"))  # fmt: skip


class WebhookRefused(Exception):
    """The callback address is not one Backdrop will call."""


class CallbackRules(BaseModel):
    # Only these hosts, when set (exact names); empty: any public address.
    allow_hosts: list[str] = Field(default_factory=list, max_length=1000)
    # In production, the ports a callback may name: any port made the workers
    # a port scanner of the internet for any tenant (connection refused and
    # a timeout are different outcomes in the status). Development: any.
    allow_ports: list[int] = Field(default_factory=lambda: [443, 8443], max_length=100)

    def refuse_at_submit(self, url: str | None, production: bool) -> None:
        """INVALID_REQUEST for a callback_url no delivery attempt would call."""
        if url is None:
            return
        try:
            check_address_form(url, self, production)
        except WebhookRefused as exc:
            raise BackdropError(ErrorCode.INVALID_REQUEST, f"callback_url refused: {exc}") from None


def check_address_form(url: str, rules: CallbackRules, production: bool) -> tuple[str, int]:
    """(host, port; the scheme's when none is named) of a callback address that
    passes every rule the address itself shows: the scheme, the port, the
    allow-list, an IP literal's range."""
    if not sendable_url(url):  # no request could carry it (submit refuses these; old records)
        raise WebhookRefused("the callback address is not printable ASCII")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a malformed address (submit refuses these; old records)
        raise WebhookRefused(f"malformed callback address: {exc}") from None
    if parts.scheme != "https" and (production or parts.scheme != "http"):
        raise WebhookRefused(f"scheme {parts.scheme!r} refused (https only in production)")
    # A fully qualified name's trailing dot names the same host
    # (127.0.0.1. is loopback to the resolver): judged without it.
    host = host.removesuffix(".") if host else host
    if not host:
        raise WebhookRefused("no host in the callback address")
    port = port or (443 if parts.scheme == "https" else 80)
    if production and port not in rules.allow_ports:
        raise WebhookRefused(f"port {port} refused (allowed: {rules.allow_ports})")
    allowed = rules.allow_hosts
    if allowed and host.lower() not in {h.lower() for h in allowed}:
        raise WebhookRefused(f"host {host!r} is not on the allow-list")
    if is_ip_literal(host):
        check_address(host, production)
    else:
        legacy = legacy_ipv4(host)
        if legacy is not None:
            check_address(legacy, production)
    return host, port


def legacy_ipv4(host: str) -> str | None:
    """The IPv4 address a host written in inet_aton's old forms names (127.1,
    2130706433, 0x7f000001, 0177.0.0.1): the resolver reads it so, though
    it is no IP literal to a URL parser; None for a host name."""
    if not re.fullmatch(r"[0-9a-fA-FxX.]+", host) or not re.match(r"[0-9]", host):
        return None  # a name (cafe.example), never parsed as an address
    try:
        return socket.inet_ntoa(socket.inet_aton(host))  # parses only: no lookup
    except OSError:
        return None


def check_address(text: str, production: bool) -> None:
    """Refuse an address that is not a public one (loopback passes in development)."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if address in _NAT64_LOCAL or address in _SITE_LOCAL:
        raise WebhookRefused(f"address {address} is not public")
    for reached in reached_addresses(address):
        if reached.is_loopback and not production:
            continue
        reserved = any(reached in net for net in _RESERVED if net.version == reached.version)
        if reserved or not reached.is_global or reached.is_multicast:
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
