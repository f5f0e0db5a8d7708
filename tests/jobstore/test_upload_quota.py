"""The hour's upload bytes per tenant (jobstore.uploads), on the real Redis:
what was not stored is not counted."""

import pytest

from api_contracts.errors import BackdropError, ErrorCode
from jobstore.uploads import MB, Uploads


def test_bytes_past_the_hour_are_refused_and_uncounted(redis_client) -> None:
    uploads = Uploads(redis_client, 3600)
    uploads.take_bytes("quota-a", 700 * 1024, 1)
    with pytest.raises(BackdropError) as info:
        uploads.take_bytes("quota-a", 400 * 1024, 1)
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED and info.value.retry_after
    uploads.take_bytes("quota-a", 324 * 1024, 1)  # 1 MB in all: the refused 400 KB uncounted
    with pytest.raises(BackdropError):  # full now: refused before any body is read
        uploads.check_room("quota-a", 0, 1)
    uploads.check_room("quota-b", 0, 1, declared=MB)  # another tenant's hour is its own
    with pytest.raises(BackdropError):
        uploads.check_room("quota-b", 0, 1, declared=MB + 1)


def test_an_upload_that_was_not_stored_gives_back_its_slot_and_bytes(redis_client) -> None:
    uploads = Uploads(redis_client, 3600)
    uploads.take_slot("quota-c", 1)
    uploads.take_bytes("quota-c", MB, 1)
    uploads.give_back("quota-c", MB, 1, 1)  # the object store failed: a retry is not charged
    uploads.check_room("quota-c", 1, 1, declared=MB)
