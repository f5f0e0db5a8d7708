"""Fixtures of the fault tests: their own Redis, a proxy in front of S3."""

from pathlib import Path

import pytest

from tests.faults.harness import OwnRedis, TcpProxy


@pytest.fixture
def own_redis(tmp_path: Path):
    (tmp_path / "redis").mkdir()
    server = OwnRedis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def proxy(s3_endpoint: str):
    relay = TcpProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    yield relay
    relay.down()
