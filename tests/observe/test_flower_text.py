"""What Flower is given to show: labels, ids and outcomes as one line of text, masked, with no
markup, and a delivery's events grouped by how they ended."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.observe.labels import bundle_label, label
from worker.observe.outcomes import EventEnd, groups
from worker.observe.shown import shown, shown_id

PHONE = "+4915112345678"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("ev-42", "ev-42", id="plain"),
        pytest.param(
            "123e4567-e89b-12d3-a456-426614174000",
            "123e4567-e89b-12d3-a456-426614174000",
            id="uuid-digits-kept",
        ),
        pytest.param("order-20261203-00001234", "order-20261203-00001234", id="dated-id-kept"),
        pytest.param(PHONE, "+4**********78", id="phone-as-id"),
        pytest.param("4915112345678", "49*********78", id="digits-as-id"),
        pytest.param(f"sms-{PHONE}-1", "sms-+4************-1", id="phone-inside"),
        pytest.param("jane.doe@example.com#1", "j***@example.com#1", id="address-inside"),
        pytest.param("<script>x</script>", "\\x3cscript\\x3ex\\x3c/script\\x3e", id="markup"),
        pytest.param("a&b", "a\\x26b", id="ampersand"),
        pytest.param("a\nb", "a\\nb", id="newline"),
    ],
)
def test_shown_id(value: str, expected: str) -> None:
    assert shown_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("HTTP 503: busy", "HTTP 503: busy", id="plain"),
        pytest.param(f"unreachable {PHONE}", "unreachable +4**********78", id="phone"),
        pytest.param("call 4915112345678 now", "call 49*********78 now", id="bare-digits"),
        pytest.param("<html><b>down</b>", "\\x3chtml\\x3e\\x3cb\\x3edown\\x3c/b\\x3e", id="markup"),
        pytest.param("line\r\nforged", "line\\r\\nforged", id="control"),
    ],
)
def test_shown(value: str, expected: str) -> None:
    assert shown(value) == expected


@given(st.text())
def test_shown_text_is_one_line_without_markup(value: str) -> None:
    for text in (shown(value), shown_id(value)):
        assert text.isprintable()
        assert not set("<>&") & set(text)


@given(st.from_regex(r"\+[1-9]\d{9,13}", fullmatch=True), st.text(max_size=20))
def test_no_phone_number_survives(phone: str, around: str) -> None:
    for text in (shown(f"{around} {phone} {around}"), shown_id(phone), shown_id(f"x-{phone}")):
        assert phone not in text and phone[1:] not in text


def test_labels_mask_and_escape_every_field_of_an_invalid_event() -> None:
    event = {"event_id": PHONE, "target": "a@example.com", "status": "<i>"}
    assert label(event, 1) == "+4**********78 -> a***@example.com \\x3ci\\x3e attempt 1"
    assert label(["not", "an", "object"], 2) == "(not an event object) attempt 2"


def test_a_long_bundle_label_still_names_every_event_escaped() -> None:
    events = [({"event_id": f"<{i}>", "target": "t", "status": "s"}, 1) for i in range(200)]
    text = bundle_label(events)
    assert text.startswith("200 events: \\x3c0\\x3e -> t s attempt 1; ")
    assert all(f"\\x3c{i}\\x3e" in text for i in range(200))
    assert "<" not in text


def _end(event_id: str, state: str, summary: str, due: float | None = None) -> EventEnd:
    return EventEnd({"event_id": event_id, "target": "t", "status": "s"}, 1, state, summary, due)


@pytest.mark.parametrize(
    ("ends", "expected"),
    [
        pytest.param(
            [_end("a", "done", "delivered")],
            [("done", "relay.deliver", "a -> t s attempt 1", "a: delivered")],
            id="one-event",
        ),
        pytest.param(
            [_end("a", "done", "delivered"), _end("b", "done", "skipped")],
            [("done", "relay.deliver_batch", "2 events: a -> t s attempt 1; b -> t s attempt 1",
              "a: delivered; b: skipped")],
            id="all-alike-one-task",
        ),
        pytest.param(
            [
                _end("a", "done", "delivered"),
                _end("b", "retry", "retry in 5.0s", 100.0),
                _end("c", "dead", "dead letter x (rejected): HTTP 400"),
                _end("d", "retry", "retry in 1.0s", 50.0),
            ],
            [
                ("dead", "relay.deliver", "c -> t s attempt 1",
                 "c: dead letter x (rejected): HTTP 400"),
                ("retry", "relay.deliver_batch",
                 "2 events: b -> t s attempt 1; d -> t s attempt 1",
                 "b: retry in 5.0s; d: retry in 1.0s"),
                ("done", "relay.deliver", "a -> t s attempt 1", "a: delivered"),
            ],
            id="mixed-worst-first",
        ),
    ],
)  # fmt: skip
def test_groups(ends: list[EventEnd], expected: list[tuple[str, str, str, str]]) -> None:
    found = groups(ends)
    assert [(g.state, g.name, g.label, g.outcomes) for g in found] == expected


def test_a_parked_group_is_due_at_its_soonest_retry() -> None:
    found = groups([_end("b", "retry", "x", 100.0), _end("d", "retry", "y", 50.0)])
    assert [g.due for g in found] == [50.0]


def test_an_outcome_is_cut_masked_and_escaped() -> None:
    (group,) = groups([_end("<a>", "dead", f"HTTP 400: {PHONE} " + "x" * 1000)])
    assert group.outcomes.startswith("\\x3ca\\x3e: HTTP 400: +4**********78 ")
    assert len(group.outcomes) < 400 and re.search(r"\d{10}", group.outcomes) is None
