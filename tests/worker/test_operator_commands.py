"""`backdrop deadletters`: what an operator sees, replays and purges (real Redis)."""

import json
import time

import pytest
from redis import Redis

from worker.cli import main
from worker.service.dead_letters import DEAD_LETTERS, dead_letter

pytestmark = pytest.mark.integration
URL = "redis://127.0.0.1:6379/9"


def test_list_replay_and_purge(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BACKDROP_REDIS__URL", URL)
    redis = Redis.from_url(URL)
    redis.flushdb()
    dead_letter(redis, "gpu", b"not json at all {{{", "undecodable message: JSONDecodeError")
    assert main(["deadletters", "list"]) == 0
    assert "undecodable message" in capsys.readouterr().out
    assert main(["deadletters", "replay"]) == 0
    assert redis.lrange("gpu", 0, -1) == [b"not json at all {{{"], "back on its queue as it was"
    assert redis.llen(DEAD_LETTERS) == 0
    dead_letter(redis, "cpu", b"", "bad args", task="backdrop.finalize", args=json.dumps(["j"]))
    assert main(["deadletters", "purge"]) == 0
    assert redis.llen(DEAD_LETTERS) == 0
    redis.flushdb()


def test_tenants_add_list_revoke(monkeypatch, capsys) -> None:
    from api_contracts.errors import BackdropError, ErrorCode
    from jobstore.tenants import Tenants

    monkeypatch.setenv("BACKDROP_REDIS__URL", URL)
    redis = Redis.from_url(URL)
    redis.flushdb()
    assert (
        main(["tenants", "add", "acme", "--max-open-jobs", "5", "--upload-mb-per-hour", "64"]) == 0
    )
    issued = json.loads(capsys.readouterr().out)
    assert issued["api_key"].startswith("bdk_") and issued["webhook_secret"]
    limits = Tenants(redis).authenticate(issued["api_key"]).limits
    assert (limits.max_open_jobs, limits.upload_mb_per_hour) == (5, 64)
    assert main(["tenants", "add", "acme"]) == 1, "a taken name is refused"
    assert "CONFLICT" in capsys.readouterr().out
    assert main(["tenants", "list"]) == 0
    listed = capsys.readouterr().out
    assert "acme" in listed and "active" in listed and issued["api_key"] not in listed
    assert main(["tenants", "revoke", "acme"]) == 0
    with pytest.raises(BackdropError) as revoked:
        Tenants(redis).authenticate(issued["api_key"])
    assert revoked.value.code == ErrorCode.FORBIDDEN
    capsys.readouterr()
    assert main(["tenants", "rotate-secret", "acme", "--grace-hours", "2"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    tenant = Tenants(redis).get("acme")
    assert tenant is not None and rotated["webhook_secret"] != issued["webhook_secret"]
    now, shared = time.time(), "the-service-secret"
    both = [rotated["webhook_secret"], issued["webhook_secret"]]
    assert tenant.signing_secrets(now, shared) == both
    assert tenant.signing_secrets(now + 2 * 3600 + 1, shared) == [rotated["webhook_secret"]]
    assert main(["tenants", "rotate-secret", "nobody"]) == 1
    for bad in ("inf", "nan", "-1", "169"):  # the old secret would sign for ever, or never
        assert main(["tenants", "rotate-secret", "acme", "--grace-hours", bad]) == 1
        assert "INVALID_REQUEST" in capsys.readouterr().out
    assert main(["tenants", "rotate-secret", "acme", "--grace-hours", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["ended_an_earlier_grace"] is True
    redis.hdel("backdrop:tenant:acme", "webhook_secret")  # a tenant from before the secrets
    assert Tenants(redis).get("acme").signing_secrets(now, shared) == [shared]  # type: ignore[union-attr]
    assert main(["tenants", "rotate-secret", "acme"]) == 0
    own = json.loads(capsys.readouterr().out)["webhook_secret"]
    legacy = Tenants(redis).get("acme")
    assert legacy is not None and legacy.signing_secrets(now, shared) == [own, shared], (
        "the receiver still holds the service's secret: it signs through the grace"
    )
    redis.flushdb()
