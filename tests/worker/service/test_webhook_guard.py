"""The address check of every webhook attempt: no request forgery."""

from urllib.parse import urlsplit

import pytest

from worker.runtime.settings import Settings
from worker.service.webhook_guard import WebhookRefused, check_address, check_destination

PRODUCTION = {"environment": "production", "redis": {"url": "redis://:a-real-redis-password@redis:6379/0"},
              "storage": {"access_key": "real-user", "secret_key": "real-secret-key"},
              "webhooks": {"secret": "a-long-random-webhook-secret"}}  # fmt: skip


@pytest.mark.parametrize(
    "url",
    ["https://10.1.2.3/hook", "https://192.168.0.10/hook", "https://172.16.5.5/",
     "https://169.254.169.254/latest/meta-data/", "https://127.0.0.1/hook",
     "https://localhost:8443/hook", "https://[::1]/hook", "https://[::ffff:10.0.0.1]/",
     "https://0.0.0.0/", "http://93.184.216.34/hook", "ftp://93.184.216.34/"],
)  # fmt: skip
def test_production_refuses_private_loopback_metadata_and_plain_http(url: str) -> None:
    with pytest.raises(WebhookRefused):
        check_destination(url, Settings(**PRODUCTION))


def test_production_allows_a_public_https_address_and_the_allow_list_narrows() -> None:
    check_destination("https://93.184.216.34/hook", Settings(**PRODUCTION))  # an IP literal
    hooks = {**PRODUCTION["webhooks"], "allow_hosts": ["hooks.example.com"]}
    narrowed = Settings(**{**PRODUCTION, "webhooks": hooks})
    with pytest.raises(WebhookRefused, match="allow-list"):
        check_destination("https://93.184.216.34/hook", narrowed)


@pytest.mark.parametrize("path", ["caf\u00e9", "a\x00b", "a\x7fb"])
def test_an_address_no_request_can_carry_is_refused_not_retried(path: str) -> None:
    """A stored callback from before submit refused these: every attempt was a
    connect error, tried again for hours; refused, it is given up at once."""
    for settings in (Settings(), Settings(**PRODUCTION)):
        with pytest.raises(WebhookRefused, match="printable ASCII"):
            check_destination(f"https://93.184.216.34/{path}", settings)


def test_development_allows_loopback_but_not_private_networks() -> None:
    check_destination("http://127.0.0.1:8080/hook", Settings())
    with pytest.raises(WebhookRefused):
        check_destination("http://10.0.0.7/hook", Settings())


# IPv6 forms that reach an IPv4 address, and ranges that are never public.
REFUSED_IN_PRODUCTION = [
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b:1::808:808",  # local-use NAT64 (RFC 8215): never a public receiver
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "::a00:1",  # IPv4-compatible 10.0.0.1
    "::ffff:a9fe:a9fe",  # IPv4-mapped
    "::ffff:0:a00:1",  # IPv4-translated 10.0.0.1
    "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:a00:1::f5ff:fffe",  # Teredo, server 10.0.0.1
    "fec0::1",  # site-local
    "fe80::1",  # link-local
    "fc00::1",  # unique local
    "::1",
    "::",
    "ff02::1",  # multicast
    "100.64.0.1",  # shared (carrier-grade NAT)
    "224.0.0.1",
]
ALLOWED_IN_PRODUCTION = [
    "93.184.216.34",
    "2606:4700:4700::1111",
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
    "::ffff:5db8:d822",  # mapped 93.184.216.34
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
]


@pytest.mark.parametrize("address", REFUSED_IN_PRODUCTION)
def test_production_judges_an_address_by_the_ipv4_one_it_reaches(address: str) -> None:
    with pytest.raises(WebhookRefused):
        check_address(address, production=True)


@pytest.mark.parametrize("address", ALLOWED_IN_PRODUCTION)
def test_production_allows_public_addresses_however_written(address: str) -> None:
    check_address(address, production=True)


LITERALS = ["https://[64:ff9b::a00:1]/hook", "https://[fec0::1]/hook",
            "https://[::ffff:0:a9fe:a9fe]/", "https://[::a9fe:a9fe]/"]  # fmt: skip


@pytest.mark.parametrize("url", LITERALS)
def test_production_refuses_them_as_callback_urls(url: str) -> None:
    with pytest.raises(WebhookRefused):
        check_destination(url, Settings(**PRODUCTION))


def test_a_malformed_address_from_an_old_record_is_refused_not_crashed() -> None:
    for url in ("https://127.0.0.1:99999/", "https://[::1/"):
        with pytest.raises(WebhookRefused, match="malformed"):
            check_destination(url, Settings())


def test_a_refused_name_tells_the_tenant_nothing_about_our_network() -> None:
    """A name that resolves inside and one that does not resolve get the same
    answer, with no address in it: the answer reaches the tenant's status."""
    production = Settings(**PRODUCTION)
    answers = []
    for url in ("https://localhost/hook", "https://no-such-host.invalid/hook"):
        with pytest.raises(WebhookRefused) as refused:
            check_destination(url, production)
        answers.append(str(refused.value).replace(urlsplit(url).hostname or "", "HOST"))
    assert answers[0] == answers[1]
    assert "127.0.0.1" not in answers[0] and "::1" not in answers[0]
    # An address the tenant typed itself is named back: it tells nothing new.
    with pytest.raises(WebhookRefused, match=r"10\.0\.0\.7"):
        check_destination("https://10.0.0.7/hook", production)


def test_production_calls_only_the_allowed_ports() -> None:
    """Any port made the workers a port scanner for any tenant: refused and
    timed out are different outcomes in a job's status."""
    production = Settings(**PRODUCTION)
    for url in ("https://93.184.216.34:6379/hook", "https://93.184.216.34:22/",
                "https://93.184.216.34:80/"):  # fmt: skip
        with pytest.raises(WebhookRefused, match="port"):
            check_destination(url, production)
    for url in ("https://93.184.216.34/hook", "https://93.184.216.34:443/",
                "https://93.184.216.34:8443/hook"):  # fmt: skip
        check_destination(url, production)
    check_destination("http://127.0.0.1:6379/hook", Settings())  # development: test receivers
