"""Property-based checks of the pure parsers and the classifier: whatever comes in, nothing
escapes but the documented outcome (an Event or InvalidEvent; Delivered, RetryLater or
Permanent; a wait or None)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tasks.backoff import parse_retry_after
from tasks.classify import Delivered, HttpResult, Permanent, RetryLater, classify
from tasks.events import Event
from tasks.schemas import InvalidEvent, load_event

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "event_id",
    "target",
    "status",
    "message_ids",
    "channel",
    "recipient",
    "conversation_id",
    "occurred_at",
    "error",
]
VALID = {
    "event_id": "e-1",
    "target": "sf",
    "status": "failed",
    "message_ids": ["m-1"],
    "channel": "c",
    "recipient": "+4915112345678",
    "occurred_at": "2026-11-23T10:00:00Z",
    "error": {"code": 207, "name": "Unavailable"},
}


def _load(raw: Any) -> Event | InvalidEvent:
    try:
        return load_event(raw)
    except InvalidEvent as exc:
        str(exc).encode("utf-8")  # the message can be stored, logged and shown
        return exc


@given(JSON)
def test_any_json_value_loads_as_an_event_or_is_invalid(raw: Any) -> None:
    assert isinstance(_load(raw), Event | InvalidEvent)


@given(st.sampled_from(FIELDS), JSON | st.integers(min_value=10**300, max_value=10**400))
def test_any_value_in_any_field_loads_or_is_invalid(field: str, value: Any) -> None:
    assert isinstance(_load({**VALID, field: value}), Event | InvalidEvent)


@given(st.dictionaries(st.text(max_size=300), JSON, max_size=6))
def test_any_unknown_fields_are_reported_printably(extra: dict[str, Any]) -> None:
    outcome = _load({**VALID, **extra})
    if isinstance(outcome, InvalidEvent):
        assert "\n" not in str(outcome)


BODIES = (
    st.binary(max_size=2000)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.integers(min_value=0, max_value=5000).map(lambda n: b'{"errors":' * n + b"{}" + b"}" * n)
    | st.fixed_dictionaries(
        {"success": st.booleans(), "errorCode": st.text(max_size=20) | st.integers()}
    ).map(lambda d: json.dumps(d).encode())
)


@given(
    st.sampled_from(["salesforce", "medallia"]),
    st.none() | st.integers(min_value=0, max_value=999),
    BODIES,
    st.none() | st.floats(allow_nan=False, min_value=0, max_value=1e9),
    st.none() | st.text(max_size=100),
)
def test_any_answer_is_delivered_retry_or_permanent(
    api: str, status: int | None, body: bytes, after: float | None, error: str | None
) -> None:
    outcome = classify(api, HttpResult(status, body, after, 0.1, error))
    assert isinstance(outcome, Delivered | RetryLater | Permanent)


@given(
    st.text(max_size=200)
    | st.from_regex(r"[A-Za-z]{3}, \d\d [A-Za-z]{3} \d{4} \d\d:\d\d:\d\d [+-]\d{1,12}")
)
def test_any_retry_after_header_is_a_wait_or_nothing(value: str) -> None:
    wait = parse_retry_after(value, 1_700_000_000.0)
    assert wait is None or wait >= 0
