"""The callback rules submit applies (jobstore.callback_rules): in production a
callback_url whose address alone shows the workers would refuse it is
INVALID_REQUEST before anything is queued; a host name is never resolved."""

import pytest

from api_contracts.errors import BackdropError, ErrorCode
from jobstore.callback_rules import CallbackRules

REFUSED_IN_PRODUCTION = {
    "http://93.184.216.34/hook": "scheme 'http'",
    "https://93.184.216.34:22/": "port 22",
    "https://hooks.example.com:6379/": "port 6379",
    "https://10.1.2.3/hook": "not public",
    "https://[::ffff:10.0.0.1]/": "not public",  # a mapped private IPv4
    "https://[64:ff9b::a9fe:a9fe]/": "not public",  # NAT64 of cloud metadata
    "https://[fec0::1]/": "not public",  # site-local
    "https://127.0.0.1/hook": "not public",
    # inet_aton's old spellings, which the resolver reads as these addresses
    "https://127.1/": "not public",
    "https://2130706433/": "not public",
    "https://0x7f000001/": "not public",
    "https://0177.0.0.1/": "not public",
    "https://0xa9.254.169.254/": "not public",
    # a fully qualified name's trailing dot: the resolver reads the same address
    "https://127.0.0.1./": "not public",
    "https://10.0.0.1.:443/": "not public",
    "https://127.1./": "not public",
    # reserved blocks some Python releases call global (3.11.7: 192.0.0.192)
    "https://192.0.0.192/": "not public",
    "https://198.18.0.1/": "not public",
    "https://[::ffff:192.0.0.170]/": "not public",
    "https://[3fff::1]/": "not public",
    "https://[5f00::1]/": "not public",
}


@pytest.mark.parametrize(("url", "words"), REFUSED_IN_PRODUCTION.items())
def test_production_refuses_at_submit_what_no_attempt_would_call(url: str, words: str) -> None:
    with pytest.raises(BackdropError) as refused:
        CallbackRules().refuse_at_submit(url, production=True)
    assert refused.value.code == ErrorCode.INVALID_REQUEST
    assert str(refused.value.message).startswith("callback_url refused: ")
    assert words in refused.value.message


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "https://93.184.216.34:8443/",
                                 "https://[2606:4700:4700::1111]/", "https://1558.216.34/",
                                 "https://cafe.example/", "https://1e100.net/", None])  # fmt: skip
def test_production_accepts_a_public_https_address_on_an_allowed_port(url: str | None) -> None:
    CallbackRules().refuse_at_submit(url, production=True)


def test_a_host_name_is_not_resolved_at_submit() -> None:
    """localhost resolves to loopback: the delivery refuses it, with the same
    words as a name that does not resolve; submit cannot tell them apart."""
    CallbackRules().refuse_at_submit("https://localhost/hook", production=True)
    CallbackRules().refuse_at_submit("https://no-such-host.invalid/hook", production=True)


def test_the_allow_list_and_ports_are_the_settings() -> None:
    rules = CallbackRules(allow_hosts=["Hooks.Example.com"], allow_ports=[9443])
    rules.refuse_at_submit("https://hooks.example.com:9443/x", production=True)
    rules.refuse_at_submit("https://hooks.example.com.:9443/x", production=True)  # the same host
    for url, words in (("https://other.example.com:9443/", "allow-list"),
                       ("https://hooks.example.com/x", "port 443")):  # fmt: skip
        with pytest.raises(BackdropError, match=words):
            rules.refuse_at_submit(url, production=True)


def test_development_allows_loopback_http_and_any_port_but_no_private_address() -> None:
    rules = CallbackRules(allow_ports=[443])
    for url in ("http://127.0.0.1:8123/hook", "http://[::1]:9/", "https://localhost:1/"):
        rules.refuse_at_submit(url, production=False)
    with pytest.raises(BackdropError, match="not public"):
        rules.refuse_at_submit("http://192.168.0.10:8123/hook", production=False)
    with pytest.raises(BackdropError, match="scheme 'ftp'"):
        rules.refuse_at_submit("ftp://127.0.0.1/", production=False)
