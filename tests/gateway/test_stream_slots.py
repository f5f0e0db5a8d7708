"""The open-event-stream bound per tenant, alone: a place is given back once
however often its end is reported, and tenants do not share places."""

import pytest

from api_contracts.errors import BackdropError, ErrorCode
from gateway.dependencies import TenantSlots


def test_a_place_is_given_back_once_and_tenants_do_not_share() -> None:
    slots = TenantSlots(1, "open event streams", "poll")
    back = slots.take("a")
    slots.take("b")()  # another tenant's place, taken and given back
    with pytest.raises(BackdropError) as refused:
        slots.take("a")
    assert refused.value.code == ErrorCode.QUOTA_EXCEEDED and refused.value.retry_after
    back()
    back()  # reported twice: still one place, not two
    again = slots.take("a")
    with pytest.raises(BackdropError):
        slots.take("a")
    again()
    assert not slots.open  # nothing left behind per tenant
