"""The address check of every webhook attempt: no request forgery."""

import pytest

from worker.runtime.settings import Settings
from worker.service.webhook_guard import WebhookRefused, check_destination

PRODUCTION = {"environment": "production", "redis": {"url": "redis://:pw@redis:6379/0"},
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


def test_development_allows_loopback_but_not_private_networks() -> None:
    check_destination("http://127.0.0.1:8080/hook", Settings())
    with pytest.raises(WebhookRefused):
        check_destination("http://10.0.0.7/hook", Settings())
