"""Where a webhook may go: no request forgery against our own network.

Checked on every attempt, after DNS resolution: in production only https, and
never a loopback, private, link-local (cloud metadata lives there), multicast,
reserved or unspecified address; in development, loopback is allowed (tests
and a receiver on the same machine). An optional allow-list of host names.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from worker.runtime.settings import Settings


class WebhookRefused(Exception):
    """The callback address is not one Backdrop will call."""


def check_destination(url: str, settings: Settings) -> None:
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
    for info in infos:
        _check_address(str(info[4][0]), production)


def _check_address(text: str, production: bool) -> None:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback and not production:
        return
    bad = (address.is_loopback or address.is_private or address.is_link_local
           or address.is_multicast or address.is_reserved or address.is_unspecified)  # fmt: skip
    if bad:
        raise WebhookRefused(f"address {address} is not public")
