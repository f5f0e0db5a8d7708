"""Where a webhook may go: no request forgery against our own network.

Checked on every attempt, after DNS resolution: in production only https, and
only globally routable addresses (no loopback, private, shared 100.64/10,
link-local where cloud metadata lives, 6to4 or other special ranges); in
development, loopback is allowed (tests and a receiver on the same machine).
An optional allow-list of host names. The caller connects to the address
checked here, never to a second resolution (DNS rebinding).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from worker.runtime.settings import Settings


class WebhookRefused(Exception):
    """The callback address is not one Backdrop will call."""


def check_destination(url: str, settings: Settings) -> str:
    """The address to connect to, once every address of the host passed."""
    parts = urlsplit(url)
    production = settings.environment == "production"
    if parts.scheme != "https" and (production or parts.scheme != "http"):
        raise WebhookRefused(f"scheme {parts.scheme!r} refused (https only in production)")
    host = parts.hostname
    if not host:
        raise WebhookRefused("no host in the callback address")
    allowed = settings.webhooks.allow_hosts
    if allowed and host.lower() not in {h.lower() for h in allowed}:
        raise WebhookRefused(f"host {host!r} is not on the allow-list")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise WebhookRefused(f"cannot resolve {host!r}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        _check_address(address, production)
    if not addresses:
        raise WebhookRefused(f"no address for {host!r}")
    return addresses[0]


def _check_address(text: str, production: bool) -> None:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback and not production:
        return
    if not address.is_global or address.is_multicast:
        raise WebhookRefused(f"address {address} is not public")
    if isinstance(address, ipaddress.IPv6Address) and (address.sixtofour or address.teredo):
        raise WebhookRefused(f"address {address} tunnels to another address")
