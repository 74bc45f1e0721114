"""Property-based checks of the intake path, item bytes to event: whatever a producer pushes,
it is an event, or an invalid dead letter that can be stored and read back; nothing raises."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tasks.events import Event
from tasks.schemas import InvalidEvent, load_event
from worker.intake.parsing import parse_item
from worker.stores.deadletters import DeadLetter

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
ITEMS = (
    st.binary(max_size=3000)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.integers(min_value=0, max_value=3000).map(lambda n: b"[" * n + b"]" * n)
    | st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass"))
)


def _settle(item: bytes) -> str:
    """What the intake and the schema make of one item: 'event' or 'invalid'."""
    problem, kept = parse_item(item, 2048, "an inbox item")
    if problem is not None:
        letter = DeadLetter(reason="invalid", error=problem, event=kept)
        assert DeadLetter.from_json(letter.to_json()) == letter  # stored and read back whole
        return "invalid"
    try:
        event: Any = load_event(kept)
    except InvalidEvent as exc:
        letter = DeadLetter(reason="invalid", error=str(exc), event=kept)
        back = DeadLetter.from_json(letter.to_json()).event
        assert json.dumps(back) == json.dumps(kept)  # the event whole (NaN != NaN, so as text)
        return "invalid"
    assert isinstance(event, Event)
    return "event"


@given(ITEMS)
def test_any_item_is_an_event_or_an_invalid_dead_letter(item: bytes) -> None:
    assert _settle(item) in ("event", "invalid")
