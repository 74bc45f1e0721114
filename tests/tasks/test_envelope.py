"""The envelope an event travels in: round trips, history bounds, narrowing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tasks.envelope import HISTORY_LIMIT, Envelope


def sample_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-1",
        "target": "sf-prod",
        "status": "failed",
        "message_ids": ["m-1", "m-2", "m-3"],
        "channel": "chan-1",
        "recipient": "+4915112345678",
        "occurred_at": "2024-01-01T00:00:00Z",
        "error": {"code": 207, "name": "Unavailable"},
    }
    event.update(overrides)
    return event


@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param(Envelope(sample_event()), id="fresh"),
        pytest.param(
            Envelope(
                sample_event(),
                attempts=3,
                first_seen=1_704_067_200.25,
                id="abc123",
                history=[{"at": 1.0, "outcome": "retry", "status": 503}],
            ),
            id="with-history",
        ),
        pytest.param(Envelope("not json at all", attempts=1), id="string-event"),
        pytest.param(Envelope([1, 2, 3]), id="list-event"),
    ],
)
def test_from_dict_round_trips_to_dict(envelope: Envelope) -> None:
    data = envelope.to_dict()
    assert Envelope.from_dict(data) == envelope
    assert envelope.to_message() == data  # the same form, only not copied
    # and through JSON, as the retry schedule stores it
    assert Envelope.from_dict(json.loads(json.dumps(data))) == envelope


def test_to_dict_is_a_copy() -> None:
    envelope = Envelope(sample_event(), history=[{"outcome": "retry"}])
    data = envelope.to_dict()
    data["event"]["message_ids"].append("m-9")
    data["history"][0]["outcome"] = "changed"
    assert envelope.event["message_ids"] == ["m-1", "m-2", "m-3"]
    assert envelope.history == [{"outcome": "retry"}]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(sample_event(), id="event"),
        pytest.param({"event": "x"}, id="only-event-key"),
        pytest.param({"first_seen": 1.0}, id="only-first-seen-key"),
        pytest.param("a line that is not JSON", id="string"),
        pytest.param(None, id="none"),
        pytest.param(42, id="number"),
    ],
)
def test_bare_event_becomes_a_fresh_envelope(event: Any) -> None:
    envelope = Envelope.from_dict(copy.deepcopy(event))
    assert envelope.event == event
    assert envelope.attempts == 0
    assert envelope.history == []
    assert envelope.first_seen > 0
    assert envelope.id


def test_bare_envelopes_get_distinct_ids() -> None:
    assert Envelope.from_dict(sample_event()).id != Envelope.from_dict(sample_event()).id


def test_from_dict_fills_a_missing_id_and_trims_history() -> None:
    data = {
        "event": sample_event(),
        "attempts": "2",
        "first_seen": "100.5",
        "id": "",
        "history": [{"n": i} for i in range(HISTORY_LIMIT + 5)],
    }
    envelope = Envelope.from_dict(data)
    assert envelope.attempts == 2
    assert envelope.first_seen == 100.5
    assert envelope.id
    assert len(envelope.history) == HISTORY_LIMIT
    assert envelope.history[-1] == {"n": HISTORY_LIMIT + 4}
    assert envelope.history[0] == {"n": 5}


@pytest.mark.parametrize("count", [1, HISTORY_LIMIT - 1, HISTORY_LIMIT, HISTORY_LIMIT + 1, 50])
def test_record_keeps_at_most_history_limit(count: int) -> None:
    envelope = Envelope(sample_event())
    for n in range(count):
        envelope.record(outcome="retry", n=n)
    assert len(envelope.history) == min(count, HISTORY_LIMIT)
    # the most recent ones are kept, in order
    kept = [entry["n"] for entry in envelope.history]
    assert kept == list(range(max(0, count - HISTORY_LIMIT), count))
    assert all(entry["outcome"] == "retry" and entry["at"] > 0 for entry in envelope.history)


def test_record_does_not_touch_a_copy_of_the_history() -> None:
    envelope = Envelope(sample_event())
    envelope.record(outcome="retry")
    before = envelope.history
    envelope.record(outcome="delivered")
    assert len(before) == 1
    assert len(envelope.history) == 2


def test_narrowed_changes_only_message_ids() -> None:
    event = sample_event()
    original = copy.deepcopy(event)
    envelope = Envelope(event, attempts=2, first_seen=123.0, id="env-1", history=[{"n": 1}])
    narrowed = envelope.narrowed(["m-2"])
    assert narrowed.event == {**original, "message_ids": ["m-2"]}
    assert (narrowed.attempts, narrowed.first_seen, narrowed.id) == (2, 123.0, "env-1")
    assert narrowed.history == [{"n": 1}]
    # the original envelope and its event are untouched
    assert event == original
    assert envelope.event is event
    assert envelope.event["message_ids"] == ["m-1", "m-2", "m-3"]
    # later changes to the copy do not leak back
    narrowed.record(outcome="retry")
    narrowed.event["message_ids"].append("m-9")
    assert envelope.history == [{"n": 1}]
    assert event == original


def test_narrowed_copies_the_given_list() -> None:
    ids = ["m-1"]
    narrowed = Envelope(sample_event()).narrowed(ids)
    ids.append("m-2")
    assert narrowed.event["message_ids"] == ["m-1"]


def test_narrowed_leaves_a_non_dict_event_alone() -> None:
    envelope = Envelope("raw text")
    assert envelope.narrowed(["m-1"]).event == "raw text"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param([], ["deferred"], id="first-entry"),
        pytest.param(["retry"], ["retry", "deferred"], id="after-an-attempt"),
        pytest.param(["retry", "deferred"], ["retry", "deferred"], id="replaces-a-deferral"),
        pytest.param(["retry"] * HISTORY_LIMIT, ["retry"] * (HISTORY_LIMIT - 1) + ["deferred"]),
    ],
)
def test_a_deferral_is_noted_once_and_survives_the_compact_form(
    before: list[str], after: list[str]
) -> None:
    # given an envelope with some history
    envelope = Envelope(sample_event(), attempts=1)
    for outcome in before:
        envelope.record(attempt=1, endpoint="x", status=503, error=None, duration=0.1)
        envelope.history[-1]["outcome"] = outcome

    # when it is deferred by a rate limit, and round-trips through the retry schedule's form
    envelope.note_deferral("rate limit reached")
    back = Envelope.from_dict(json.loads(json.dumps(envelope.to_compact())))

    # then the history ends with one deferral saying why, and no attempt was added
    assert [h["outcome"] for h in back.history] == after
    assert back.history[-1]["error"] == "rate limit reached" and back.attempts == 1
