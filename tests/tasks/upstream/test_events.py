"""Receipts made into canonical events: valid by the producers' schema, ids that make repeats
duplicates, correlations from records and echoed references."""

from __future__ import annotations

import pytest

from tasks.schemas import load_event
from tasks.upstream.correlation import BadCorrelation, Correlation, record_of
from tasks.upstream.events import event_id, make_event
from tasks.upstream.receipts import Receipt, ReceiptError, normalize_recipient
from tasks.upstream.references import read_reference

FAILED = Receipt(
    "twilio",
    "SM1",
    "undelivered",
    "undelivered",
    None,
    "+15551234567",
    ReceiptError(30003, "Unreachable destination handset"),
)
CORRELATION = Correlation(("0Mw1", "0Mw2"), "72a6a4ec", "sf", "+4900", "conv-1")


def test_a_failure_receipt_makes_a_valid_event_with_its_error_and_the_time_of_receipt() -> None:
    event = make_event("tw", FAILED, CORRELATION, 1_767_229_260_000)
    loaded = load_event(event)
    assert loaded.status == "undelivered"
    assert loaded.message_ids == ("0Mw1", "0Mw2")
    assert loaded.recipient == "+15551234567"  # the receipt's, before the record's
    assert loaded.occurred_ms == 1_767_229_260_000
    assert loaded.conversation_id == "conv-1"
    assert loaded.error is not None and (loaded.error.code, loaded.error.name) == (
        30003,
        "Unreachable destination handset",
    )


def test_a_failure_without_a_reason_still_carries_one_and_a_delivery_none() -> None:
    bare = Receipt("smpp_dlr", "1", "failed", "REJECTD")
    assert load_event(make_event("s", bare, CORRELATION, 1_767_229_260_000)).error is not None
    delivered = Receipt("smpp_dlr", "1", "delivered", "DELIVRD", 1_767_229_260_000)
    assert "error" not in make_event("s", delivered, CORRELATION, 0)


def test_event_ids_are_the_same_for_repeats_and_differ_by_source_status_and_error() -> None:
    same = Receipt("twilio", "SM1", "undelivered", "undelivered", 5, None, ReceiptError(30003, "x"))
    assert event_id("tw", FAILED) == event_id("tw", same)
    assert (
        len(
            {
                event_id("tw", FAILED),
                event_id("tw2", FAILED),
                event_id("tw", Receipt("twilio", "SM1", "delivered", "delivered")),
                event_id(
                    "tw",
                    Receipt(
                        "twilio", "SM1", "undelivered", "u", None, None, ReceiptError(30005, "y")
                    ),
                ),
            }
        )
        == 4
    )


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("15551234567", "+15551234567"),
        ("whatsapp:+4915112345678", "+4915112345678"),
        ("+1", "+1"),
        ("a@b.c", "a@b.c"),
        ("", None),
        (None, None),
    ],
)
def test_recipients_are_normalized(given: str | None, normalized: str | None) -> None:
    assert normalize_recipient(given) == normalized


def test_an_echoed_reference_holds_a_correlation_and_anything_else_none() -> None:
    text = '{"target":"sf","message_ids":["0Mw1"],"channel":"c","conversation_id":"v"}'
    assert read_reference(text) == (Correlation(("0Mw1",), "c", "sf", None, "v"), "absent")
    for other in (
        None,
        "",
        "abc",
        "{not json",
        '{"channel":"c"}',
        "[1]",
        '{"message_ids":[],"channel":"c"}',
    ):
        assert read_reference(other) is None


def test_records_are_checked_field_by_field() -> None:
    record = record_of(
        {"source": "tw", "provider_message_id": "SM1", "message_ids": ["m"], "channel": "c"}
    )
    assert (record.source, record.correlation.target) == ("tw", None)
    assert record.correlation.with_target("sf").target == "sf"
    for bad in (
        {},
        {"source": "tw", "provider_message_id": "SM1", "channel": "c"},
        {
            "source": "tw",
            "provider_message_id": "SM1",
            "message_ids": ["m"],
            "channel": "c",
            "extra": 1,
        },
    ):
        with pytest.raises(BadCorrelation):
            record_of(bad)
