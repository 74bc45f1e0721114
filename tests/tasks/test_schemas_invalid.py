"""The producers' contract: every broken rule is refused, naming the field and the problem."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.schemas import InvalidEvent, load_event
from tests.tasks.schema_builders import NO_ERROR, raw_event


def without(key: str) -> dict[str, Any]:
    return raw_event(**{key: ...})


INVALID = [
    *(
        pytest.param(without(key), key, "Missing data for required field", id=f"missing-{key}")
        for key in (
            "event_id",
            "target",
            "status",
            "message_ids",
            "channel",
            "recipient",
            "occurred_at",
        )
    ),
    pytest.param(raw_event(event_id=5), "event_id", "Not a valid string", id="event-id-int"),
    pytest.param(raw_event(target=["t"]), "target", "Not a valid string", id="target-list"),
    pytest.param(raw_event(channel=None), "channel", "may not be null", id="channel-null"),
    pytest.param(raw_event(recipient=7), "recipient", "Not a valid string", id="recipient-int"),
    pytest.param(raw_event(status=1), "status", "Not a valid string", id="status-int"),
    pytest.param(
        raw_event(event_id=""), "event_id", "Length must be between 1", id="event-id-empty"
    ),
    pytest.param(raw_event(target=""), "target", "Length must be between 1", id="target-empty"),
    pytest.param(raw_event(channel=""), "channel", "Length must be between 1", id="channel-empty"),
    pytest.param(
        raw_event(recipient=""), "recipient", "Length must be between 1", id="recipient-empty"
    ),
    pytest.param(raw_event(event_id="e" * 201), "event_id", "and 200", id="event-id-201-chars"),
    pytest.param(raw_event(recipient="r" * 241), "recipient", "and 240", id="recipient-241-chars"),
    pytest.param(
        raw_event(conversation_id=12), "conversation_id", "Not a valid string", id="conv-id-int"
    ),
    pytest.param(
        raw_event(message_ids=[]), "message_ids", "between 1 and 100", id="no-message-ids"
    ),
    pytest.param(
        raw_event(message_ids=[f"m-{i}" for i in range(101)]),
        "message_ids",
        "between 1 and 100",
        id="101-message-ids",
    ),
    pytest.param(
        raw_event(message_ids=["m-1", ""]), "message_ids.1", "Length must be", id="empty-message-id"
    ),
    pytest.param(
        raw_event(message_ids=[1]), "message_ids.0", "Not a valid string", id="message-id-int"
    ),
    pytest.param(raw_event(message_ids="m-1"), "message_ids", "Not a valid list", id="ids-string"),
    pytest.param(raw_event(status="bounced"), "status", "Must be one of", id="unknown-status"),
    pytest.param(raw_event(priority="high"), "priority", "Unknown field", id="unknown-field"),
    pytest.param(
        raw_event(error={"code": 1, "name": "x", "detail": "y"}),
        "error.detail",
        "Unknown field",
        id="unknown-field-in-error",
    ),
    pytest.param(
        raw_event(status="failed", **NO_ERROR),
        "error",
        "Required when status is 'failed'",
        id="failed-without-error",
    ),
    pytest.param(
        raw_event(status="undelivered", **NO_ERROR),
        "error",
        "Required when status is 'undelivered'",
        id="undelivered-without-error",
    ),
    pytest.param(raw_event(error=None), "error", "Required when status", id="failed-error-null"),
    pytest.param(
        raw_event(status="delivered"),
        "error",
        "Only allowed when status",
        id="delivered-with-error",
    ),
    pytest.param(
        raw_event(status="sent"), "error", "Only allowed when status", id="sent-with-error"
    ),
    pytest.param(raw_event(error="boom"), "error", "Invalid input type", id="error-not-object"),
    pytest.param(
        raw_event(error={"code": True, "name": "x"}),
        "error.code",
        "integer or a string",
        id="code-bool",
    ),
    pytest.param(
        raw_event(error={"code": 1.5, "name": "x"}),
        "error.code",
        "integer or a string",
        id="code-float",
    ),
    pytest.param(
        raw_event(error={"code": "", "name": "x"}),
        "error.code",
        "Must not be empty",
        id="code-empty",
    ),
    pytest.param(
        raw_event(error={"code": [1], "name": "x"}),
        "error.code",
        "integer or a string",
        id="code-list",
    ),
    pytest.param(
        raw_event(error={"code": 1}), "error.name", "Missing data for required", id="name-missing"
    ),
    pytest.param(
        raw_event(error={"code": 1, "name": "x", "message": ""}),
        "error.message",
        "Length must be",
        id="message-empty",
    ),
    pytest.param(
        raw_event(occurred_at="2024-01-01T00:00:00"),
        "occurred_at",
        "needs a UTC offset",
        id="iso-no-offset",
    ),
    pytest.param(
        raw_event(occurred_at="yesterday"), "occurred_at", "Not an ISO-8601 time", id="time-garbage"
    ),
    pytest.param(raw_event(occurred_at=""), "occurred_at", "ISO-8601", id="time-empty"),
    pytest.param(raw_event(occurred_at=True), "occurred_at", "ISO-8601", id="time-bool"),
    pytest.param(raw_event(occurred_at=None), "occurred_at", "may not be null", id="time-null"),
    pytest.param(raw_event(occurred_at=-1), "occurred_at", "positive epoch", id="epoch-negative"),
    pytest.param(
        raw_event(occurred_at=-200_000_000),
        "occurred_at",
        "positive epoch",
        id="epoch-1963-seconds",
    ),
    pytest.param(
        raw_event(occurred_at=100_000_000),
        "occurred_at",
        "between 2000 and 2200",
        id="epoch-1973-s",
    ),
    pytest.param(raw_event(occurred_at=0), "occurred_at", "between 2000 and 2200", id="epoch-zero"),
    pytest.param(
        raw_event(occurred_at=float("inf")), "occurred_at", "positive epoch", id="epoch-infinite"
    ),
    pytest.param([raw_event()], "event", "must be a JSON object, not list", id="event-is-list"),
    pytest.param("{}", "event", "must be a JSON object, not str", id="event-is-string"),
    pytest.param(None, "event", "must be a JSON object", id="event-is-null"),
    pytest.param(42, "event", "must be a JSON object, not int", id="event-is-number"),
]


@pytest.mark.parametrize(("raw", "field", "problem"), INVALID)
def test_invalid_event_is_refused_naming_field_and_problem(
    raw: Any, field: str, problem: str
) -> None:
    # given a raw event that breaks the contract in one way (see the param id)
    # when it is loaded
    with pytest.raises(InvalidEvent) as caught:
        load_event(raw)
    # then the message names the field, followed by what is wrong with it
    message = str(caught.value)
    assert f"{field}: " in message
    assert problem in message


def test_several_problems_are_all_reported() -> None:
    # given an event with two bad fields
    raw = raw_event(status="bounced", recipient="")
    # when it is loaded
    with pytest.raises(InvalidEvent) as caught:
        load_event(raw)
    # then both are named
    assert "status: " in str(caught.value)
    assert "recipient: " in str(caught.value)


def test_superscript_digit_occurred_at_is_refused_as_invalid_event() -> None:
    # given an occurred_at that str.isdigit() accepts but int() does not
    raw = raw_event(occurred_at="²")
    # when it is loaded
    with pytest.raises(InvalidEvent) as caught:
        load_event(raw)
    # then it is an ordinary contract violation naming the field
    assert "occurred_at: " in str(caught.value)
