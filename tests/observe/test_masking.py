"""The masking of recipients (phone numbers and addresses) for human eyes."""

from __future__ import annotations

import pytest

from worker.observe.masking import mask, mask_fields


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("+4915112345678", "+4**********78", id="e164"),
        pytest.param("+15551234567", "+1********67", id="e164-us"),
        pytest.param("4915112345678", "49*********78", id="digits"),
        pytest.param("1234567", "12***67", id="seven-chars"),
        pytest.param("123456", "******", id="six-chars"),
        pytest.param("12", "**", id="short"),
        pytest.param("", "", id="empty"),
        pytest.param("jane.doe@example.com", "j***@example.com", id="email"),
        pytest.param("a@example.com", "a***@example.com", id="email-one-letter"),
        pytest.param(4915112345678, "49*********78", id="number"),
        pytest.param(None, "", id="none"),
    ],
)
def test_mask(value: object, expected: str) -> None:
    masked = mask(value)
    assert masked == expected
    if value is not None and str(value):
        assert str(value) not in masked


@pytest.mark.parametrize(
    "value",
    ["+4915112345678", "+44 20 7946 0958", "jane.doe@example.com", "abc", "x" * 240],
)
def test_mask_keeps_length_hint_but_never_the_value(value: str) -> None:
    masked = mask(value)
    assert value not in masked
    assert "*" in masked


def test_mask_fields_masks_recipients_and_text_never_times_or_codes() -> None:
    # given an event with epoch times, a numeric code, and phone numbers in three places
    event = {
        "recipient": "+4915112345678",
        "occurred_at": 1764720000,
        "sent_ms": 1764720000123,
        "error": {"code": 30003, "message": "unreachable: +4915112345678"},
        "receipt": {"recipient": 4915112345678, "ids": ["call +4915112345678"]},
    }

    # when it is masked for people to read
    shown = mask_fields(event)

    # then no phone number is left, and the numbers are as they were
    assert "4915112345678" not in repr(shown)
    assert shown["recipient"] == "+4**********78"
    assert shown["receipt"]["recipient"] == "49*********78"
    assert (shown["occurred_at"], shown["sent_ms"]) == (1764720000, 1764720000123)
    assert shown["error"]["code"] == 30003
    assert shown["error"]["message"] == "unreachable: +4**********78"
    assert shown["receipt"]["ids"] == ["call +4**********78"]
