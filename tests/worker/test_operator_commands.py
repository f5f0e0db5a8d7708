"""`backdrop deadletters`: what an operator sees, replays and purges (real Redis)."""

import json

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
