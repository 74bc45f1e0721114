"""The producers' contract: valid events and what they load as."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.events import Event, EventError
from tasks.schemas import load_event
from tests.tasks.schema_builders import (
    JAN_1_2024_MS,
    JAN_1_2024_S,
    NO_ERROR,
    expected_event,
    raw_event,
)

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
