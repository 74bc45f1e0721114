"""Raw events and the events they load as, for the schema tests."""

from __future__ import annotations

from typing import Any

from tasks.events import Event, EventError

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
"""Overrides that remove `error` from a raw event."""
