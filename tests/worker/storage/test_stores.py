"""Both ObjectStore implementations, same expectations; MinIO through a real S3 server."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

import pytest

from tests.services import ACCESS, SECRET, free_port
from worker.storage import ObjectNotFound, StorageUnavailable
from worker.storage.local_store import LocalStore
from worker.storage.minio_store import MinioStore

pytestmark = pytest.mark.integration


@pytest.fixture(params=["minio", "local"])
def store(request, tmp_path: Path):
    if request.param == "local":
        store = LocalStore(tmp_path)
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        store = MinioStore(endpoint, ACCESS, SECRET, public_endpoint="photos.example.com:9000")
    store.ensure_buckets(["unit-bucket"])
    return store


def test_put_get_exists_list_delete(store) -> None:
    store.put("unit-bucket", "a/b/c.png", b"payload", "image/png")
    assert store.get("unit-bucket", "a/b/c.png") == b"payload"
    assert store.exists("unit-bucket", "a/b/c.png")
    assert "a/b/c.png" in store.list("unit-bucket", "a/")
    store.delete("unit-bucket", "a/b/c.png")
    assert not store.exists("unit-bucket", "a/b/c.png")
    with pytest.raises(ObjectNotFound):
        store.get("unit-bucket", "a/b/c.png")


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a/../../b", "a//b", ""])
def test_keys_that_escape_are_refused(store, key: str) -> None:
    with pytest.raises(ObjectNotFound):
        store.put("unit-bucket", key, b"x", "text/plain")


def test_presigned_url_is_signed_for_the_public_host_and_expires(s3_endpoint: str) -> None:
    store = MinioStore(s3_endpoint, ACCESS, SECRET, public_endpoint="photos.example.com:9000")
    store.ensure_buckets(["unit-bucket"])
    url = store.presigned_get("unit-bucket", "k.png", timedelta(days=30))
    parsed = urlparse(url)
    assert parsed.netloc == "photos.example.com:9000"
    assert "X-Amz-Expires=604800" in parsed.query, "capped at S3's 7 days"
    # Signed for the internal host, the same URL really downloads the object.
    store.put("unit-bucket", "k.png", b"png-bytes", "image/png")
    internal = MinioStore(s3_endpoint, ACCESS, SECRET)
    with urlopen(internal.presigned_get("unit-bucket", "k.png", timedelta(minutes=5))) as resp:
        assert resp.read() == b"png-bytes"


def test_lifecycle_rule_expires_intermediates(s3_endpoint: str) -> None:
    store = MinioStore(s3_endpoint, ACCESS, SECRET)
    store.ensure_buckets(["work-bucket"])
    store.expire_after("work-bucket", 3)
    config = store.client.get_bucket_lifecycle(bucket_name="work-bucket")
    assert config is not None and config.rules[0].expiration.days == 3


def test_unreachable_store_is_unavailable_not_missing() -> None:
    store = MinioStore(f"127.0.0.1:{free_port()}", ACCESS, SECRET, timeout_seconds=1)
    with pytest.raises(StorageUnavailable):
        store.get("any", "key")


def test_age_is_since_the_last_write_and_none_for_no_object(store) -> None:
    assert store.age("unit-bucket", "never/written.png") is None
    store.put("unit-bucket", "aged/x.png", b"payload", "image/png")
    age = store.age("unit-bucket", "aged/x.png")
    assert age is not None and timedelta(0) <= age < timedelta(minutes=2)
