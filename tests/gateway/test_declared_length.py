"""What the gateway takes from a client's Content-Length before the body
(gateway.uploads.declared_length): the quota check, the upload cap and the
JSON cap all read it, so one odd header must not raise (a 500) or count as a
huge or negative body."""

import pytest
from starlette.requests import Request

from gateway.uploads import declared_length


def _request(value: str | None) -> Request:
    headers = [] if value is None else [(b"content-length", value.encode("latin-1"))]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


@pytest.mark.parametrize(("value", "expected"), [
    ("1048576", 1048576), ("0", 0), (None, 0), ("", 0),
    ("9" * 18, 10**18 - 1),  # 18 digits: the longest counted
    ("9" * 19, 0), ("9" * 5000, 0),  # int() of 5000 digits raises ValueError
    ("-5", 0), ("+5", 0), (" 5", 0), ("1_0", 0), ("0x10", 0),
    ("\u00b2", 0),  # a superscript two: str.isdigit() says yes, int() raises
])  # fmt: skip
def test_only_plain_ascii_digits_are_a_declared_length(value: str | None, expected: int) -> None:
    assert declared_length(_request(value)) == expected
