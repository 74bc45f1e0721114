"""The producers' contract: which raw events load, what they load as, and how refusals read."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.events import Event, EventError
from tasks.schemas import InvalidEvent, load_event

# 2024-01-01T00:00:00Z
JAN_1_2024_S = 1_704_067_200
JAN_1_2024_MS = JAN_1_2024_S * 1000


def raw_event(**overrides: Any) -> dict[str, Any]:
    """A valid `failed` event; `overrides` replace keys, and a value of ... removes the key."""
    raw: dict[str, Any] = {
        "event_id": "evt-1",
        "target": "sf-prod",
        "status": "failed",
        "message_ids": ["m-1"],
        "channel": "chan-1",
        "recipient": "+4915112345678",
        "occurred_at": "2024-01-01T00:00:00Z",
        "error": {"code": 207, "name": "Unavailable"},
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not ...}


def expected_event(**overrides: Any) -> Event:
    values: dict[str, Any] = {
        "event_id": "evt-1",
        "target": "sf-prod",
        "status": "failed",
        "message_ids": ("m-1",),
        "channel": "chan-1",
        "recipient": "+4915112345678",
        "occurred_ms": JAN_1_2024_MS,
        "conversation_id": None,
        "error": EventError(code=207, name="Unavailable", message=None),
    }
    values.update(overrides)
    return Event(**values)


NO_ERROR = {"error": ...}

VALID = [
    pytest.param(
        raw_event(status="sent", **NO_ERROR), expected_event(status="sent", error=None), id="sent"
    ),
    pytest.param(
        raw_event(status="delivered", **NO_ERROR),
        expected_event(status="delivered", error=None),
        id="delivered",
    ),
    pytest.param(
        raw_event(status="read", **NO_ERROR), expected_event(status="read", error=None), id="read"
    ),
    pytest.param(raw_event(status="failed"), expected_event(status="failed"), id="failed"),
    pytest.param(
        raw_event(status="undelivered"), expected_event(status="undelivered"), id="undelivered"
    ),
    pytest.param(
        raw_event(status="delivered", error=None),
        expected_event(status="delivered", error=None),
        id="error-null-when-not-failed",
    ),
    pytest.param(
        raw_event(occurred_at="2024-01-01T02:00:00+02:00"),
        expected_event(),
        id="iso-with-plus-two-hours",
    ),
    pytest.param(
        raw_event(occurred_at="2024-01-01T00:00:00.123Z"),
        expected_event(occurred_ms=JAN_1_2024_MS + 123),
        id="iso-with-milliseconds",
    ),
    pytest.param(raw_event(occurred_at=JAN_1_2024_S), expected_event(), id="epoch-seconds-int"),
    pytest.param(
        raw_event(occurred_at=JAN_1_2024_S + 0.5),
        expected_event(occurred_ms=JAN_1_2024_MS + 500),
        id="epoch-seconds-float",
    ),
    pytest.param(
        raw_event(occurred_at=JAN_1_2024_MS + 123),
        expected_event(occurred_ms=JAN_1_2024_MS + 123),
        id="epoch-ms-int",
    ),
    pytest.param(
        raw_event(occurred_at=str(JAN_1_2024_S)), expected_event(), id="epoch-seconds-string"
    ),
    pytest.param(
        raw_event(occurred_at=str(JAN_1_2024_MS + 7)),
        expected_event(occurred_ms=JAN_1_2024_MS + 7),
        id="epoch-ms-string",
    ),
    pytest.param(
        raw_event(error={"code": "E42", "name": "Blocked"}),
        expected_event(error=EventError(code="E42", name="Blocked")),
        id="error-code-string",
    ),
    pytest.param(
        raw_event(error={"code": 30003, "name": "Unreachable", "message": "Handset off"}),
        expected_event(error=EventError(code=30003, name="Unreachable", message="Handset off")),
        id="error-with-message",
    ),
    pytest.param(
        raw_event(status="read", conversation_id="conv-9", **NO_ERROR),
        expected_event(status="read", conversation_id="conv-9", error=None),
        id="conversation-id",
    ),
    pytest.param(
        raw_event(message_ids=[f"m-{i}" for i in range(100)]),
        expected_event(message_ids=tuple(f"m-{i}" for i in range(100))),
        id="one-hundred-message-ids",
    ),
    pytest.param(
        raw_event(event_id="e" * 200, recipient="r" * 240),
        expected_event(event_id="e" * 200, recipient="r" * 240),
        id="longest-event-id-and-recipient",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_valid_event_loads_as_normalised_event(raw: dict[str, Any], expected: Event) -> None:
    # given a raw event that keeps the contract (see the param id)
    # when it is loaded
    event = load_event(raw)
    # then every field comes through, with the time as epoch milliseconds
    assert event == expected


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
