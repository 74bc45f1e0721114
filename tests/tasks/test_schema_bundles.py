"""A bundle's events go through the schema in one pass: each event gets exactly the answer it
gets alone (the same Event, or an InvalidEvent with the same message), whatever its company."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tasks.events import Event
from tasks.schemas import InvalidEvent, load_event, load_events
from tests.tasks.test_properties import FIELDS, JSON, VALID

NOW = 1_800_000_000.0
# An event: valid, or valid but for one field's value, or any JSON at all.
EVENTS = (
    st.builds(lambda i: {**VALID, "event_id": f"e-{i}"}, st.integers(0, 999))
    | st.builds(lambda f, v: {**VALID, f: v}, st.sampled_from(FIELDS), JSON)
    | JSON
)


def _alone(raw: Any) -> Event | str:
    try:
        return load_event(raw, NOW)
    except InvalidEvent as exc:
        return f"invalid: {exc}"


def _answer(loaded: Event | InvalidEvent) -> Event | str:
    return f"invalid: {loaded}" if isinstance(loaded, InvalidEvent) else loaded


@given(st.lists(EVENTS, max_size=8))
def test_each_event_of_a_bundle_gets_the_answer_it_gets_alone(raws: list[Any]) -> None:
    assert [_answer(e) for e in load_events(raws, NOW)] == [_alone(raw) for raw in raws]


def test_a_bundle_of_valid_events_loads_in_one_pass() -> None:
    raws = [{**VALID, "event_id": f"e-{i}"} for i in range(50)]
    events = load_events(raws, NOW)
    assert [e.event_id for e in events if isinstance(e, Event)] == [f"e-{i}" for i in range(50)]


def test_one_event_dated_too_far_ahead_is_invalid_alone() -> None:
    ahead = {**VALID, "event_id": "late", "occurred_at": int(NOW) + 3600}
    loaded = load_events([{**VALID}, ahead], NOW)
    assert isinstance(loaded[0], Event)
    assert isinstance(loaded[1], InvalidEvent) and "future" in str(loaded[1])
