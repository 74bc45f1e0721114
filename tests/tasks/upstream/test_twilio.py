"""Twilio status callbacks: statuses, error names, recipients, the echoed reference."""

from __future__ import annotations

import pytest

from tasks.upstream import twilio
from tasks.upstream.receipts import ReceiptError, Unreadable
from tests.tasks.upstream.builders import form

DOC_EXAMPLE = {
    "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "MessageStatus": "undelivered",
    "ErrorCode": "30003",
    "To": "+15551234567",
    "From": "+15017122661",
    "AccountSid": "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "ApiVersion": "2010-04-01",
}


def test_the_documented_example_is_an_undelivered_receipt_with_the_error_named() -> None:
    (receipt,) = twilio.normalize(form(DOC_EXAMPLE))
    assert receipt.provider_message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert receipt.status == "undelivered"
    assert receipt.error == ReceiptError(30003, "Unreachable destination handset")
    assert receipt.recipient == "+15551234567"
    assert receipt.occurred_ms is None
    assert receipt.reference is None


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("queued", None),
        ("accepted", None),
        ("scheduled", None),
        ("sending", None),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("failed", "failed"),
        ("canceled", "failed"),
        ("undelivered", "undelivered"),
        ("something_new", None),
    ],
)
def test_each_status_maps_as_the_table_says(given: str, canonical: str | None) -> None:
    (receipt,) = twilio.normalize(form({**DOC_EXAMPLE, "MessageStatus": given}))
    assert (receipt.status, receipt.provider_status) == (canonical, given)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("30005", ReceiptError(30005, "Unknown destination handset")),
        ("21610", ReceiptError(21610, "Recipient opted out (STOP)")),
        ("39999", ReceiptError(39999, "Twilio error 39999")),
        ("", None),
    ],
)
def test_error_codes_are_named_from_the_table(code: str, error: ReceiptError | None) -> None:
    (receipt,) = twilio.normalize(form({**DOC_EXAMPLE, "ErrorCode": code}))
    assert receipt.error == error


def test_whatsapp_prefix_is_dropped_and_the_carrier_time_read() -> None:
    fields = {**DOC_EXAMPLE, "To": "whatsapp:+4915112345678", "RawDlrDoneDate": "2601010101"}
    (receipt,) = twilio.normalize(form(fields))
    assert receipt.recipient == "+4915112345678"
    assert receipt.occurred_ms == 1767229260000  # 2026-01-01T01:01Z


def test_the_reference_comes_from_the_relay_ref_query_parameter() -> None:
    url = "https://relay.example.com/v1/receipts/tw?relay_ref=%7B%22channel%22%3A%22c%22%7D"
    (receipt,) = twilio.normalize(form(DOC_EXAMPLE, url))
    assert receipt.reference == '{"channel":"c"}'


def test_sms_sid_and_sms_status_stand_in_for_the_message_fields() -> None:
    (receipt,) = twilio.normalize(form({"SmsSid": "SM2", "SmsStatus": "sent"}))
    assert (receipt.provider_message_id, receipt.status) == ("SM2", "sent")


@pytest.mark.parametrize("fields", [{"MessageStatus": "sent"}, {"MessageSid": "SM1"}, {}])
def test_a_callback_without_sid_or_status_is_unreadable(fields: dict[str, str]) -> None:
    with pytest.raises(Unreadable):
        twilio.normalize(form(fields))
