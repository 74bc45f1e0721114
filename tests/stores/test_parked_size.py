"""What a parked retry costs: the envelope's compact form, and members older versions parked."""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bench.events import make_events
from bench.parked_memory import parked_envelope
from tasks.envelope import HISTORY_LIMIT, Envelope
from worker.settings import get_settings
from worker.stores.pump import RetryPump
from worker.stores.retries import RetrySchedule, _member

pytestmark = pytest.mark.timeout(30)

T = 1_795_428_000.0


def sample_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-1",
        "target": "md",
        "status": "failed",
        "message_ids": ["m-1", "m-2"],
        "channel": "100200300400500",
        "recipient": "+4915112345678",
        "occurred_at": "2026-11-23T10:00:00.123Z",
        "error": {"code": 207, "name": "Unavailable", "message": "Zustellung fehlgeschlagen ✉"},
    }
    event.update(overrides)
    return event


def attempt(n: int, **overrides: Any) -> dict[str, Any]:
    """A history entry as the pipeline records it."""
    entry: dict[str, Any] = {
        "at": T + n,
        "attempt": n,
        "endpoint": "messages",
        "status": 503,
        "error": None,
        "duration": 0.0123,
        "outcome": "retry",
    }
    entry.update(overrides)
    return entry


def parked() -> list[Envelope]:
    """Realistic parked envelopes: the bench's events after one 503."""
    rng = random.Random(3)
    return [parked_envelope(e, rng) for e in make_events(200, "size", postable_only=True)]


# -- the compact form -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param(Envelope(sample_event()), id="fresh"),
        pytest.param(
            Envelope(sample_event(), 2, T - 60, "a" * 32, [attempt(1), attempt(2)]),
            id="parked",
        ),
        pytest.param(
            Envelope(
                sample_event(),
                history=[
                    {"at": 1.0, "outcome": "retry", "status": 503},
                    {**attempt(1), "extra": 1},
                    {k: v for k, v in attempt(2).items() if k != "error"},
                    attempt(3, error="timeout", status=None),
                ],
            ),
            id="odd-history",
        ),
        pytest.param(Envelope("not json at all", attempts=1), id="string-event"),
        pytest.param(Envelope([1, 2, 3]), id="list-event"),
        pytest.param(Envelope(None, id="env-1"), id="null-event"),
    ],
)
def test_compact_form_round_trips_through_json(envelope: Envelope) -> None:
    member = json.dumps(envelope.to_compact(), ensure_ascii=False, separators=(",", ":"))
    assert Envelope.from_dict(json.loads(member)) == envelope


def test_compact_form_keeps_the_event_verbatim_where_the_pump_reads_it() -> None:
    # given an event with key order, unicode and nesting as the producer sent it
    event = sample_event()
    envelope = Envelope(copy.deepcopy(event), attempts=1, history=[attempt(1)])

    # when it is stored compactly
    data = envelope.to_compact()

    # then "event" holds it unchanged, in the same order (the pump's hold reads its target)
    assert data["event"] == event
    assert list(data["event"]) == list(event)
    assert data["event"]["target"] == "md"


def test_compact_form_leaves_out_defaults_and_packs_recorded_attempts() -> None:
    fresh = Envelope(sample_event(), first_seen=T, id="e1").to_compact()
    assert set(fresh) == {"v", "i", "f", "event"}
    retried = Envelope(sample_event(), 1, T, "e1", [attempt(1)]).to_compact()
    assert retried["h"] == [[T + 1, 1, "messages", 503, None, 0.0123, "retry"]]
    assert retried["a"] == 1


def test_compact_form_is_a_copy() -> None:
    envelope = Envelope(sample_event(), history=[{"outcome": "retry"}])
    data = envelope.to_compact()
    data["event"]["message_ids"].append("m-9")
    data["h"][0]["outcome"] = "changed"
    assert envelope.event["message_ids"] == ["m-1", "m-2"]
    assert envelope.history == [{"outcome": "retry"}]


def test_compact_form_trims_history_on_reading() -> None:
    data = Envelope(sample_event(), history=[attempt(n) for n in range(HISTORY_LIMIT + 5)])
    envelope = Envelope.from_dict(data.to_compact())
    assert [h["attempt"] for h in envelope.history] == list(range(5, HISTORY_LIMIT + 5))


def test_a_parked_event_costs_at_most_160_bytes_beside_the_event() -> None:
    # given the bench's events, parked after one 503 (id, times, one history entry, claim)
    envelopes = parked()

    # when they are stored as retry-schedule members
    extra = [
        len(_member(e).encode()) - len(json.dumps(e.event, separators=(",", ":")).encode())
        for e in envelopes
    ]

    # then the bookkeeping is a fraction of what the long form spent (about 260 bytes)
    assert max(extra) <= 160
    assert all(len(_member(e)) < len(json.dumps(e.to_dict())) - 100 for e in envelopes)


def test_members_differ_per_envelope_and_repeat_for_the_same_one() -> None:
    event = sample_event()
    one, two = Envelope(event, first_seen=T), Envelope(event, first_seen=T)
    assert _member(one) != _member(two)
    assert _member(one) == _member(Envelope.from_dict(json.loads(_member(one))))


# -- members a previous version parked ---------------------------------------------------------

# Exactly what the schedule stored before the compact form: `to_dict()` as JSON.
LONG_MEMBER = (
    '{"event":{"event_id":"evt-old","target":"md","status":"delivered","message_ids":["m-old"],'
    '"channel":"100200300400500","recipient":"+4915112345678","occurred_at":1795428000000},'
    '"attempts":2,"first_seen":1795427000.1234567,"id":"0123456789abcdef0123456789abcdef",'
    '"history":[{"at":1795427000.2,"attempt":1,"endpoint":"messages","status":503,"error":null,'
    '"duration":0.0123,"outcome":"retry"},{"at":1795427600.5,"attempt":2,"endpoint":"messages",'
    '"status":null,"error":"timed out","duration":10.0,"outcome":"retry"}],'
    '"claimed":true,"replayed":false}'
)


def test_long_form_members_are_still_read() -> None:
    envelope = Envelope.from_dict(json.loads(LONG_MEMBER))
    assert envelope.event["event_id"] == "evt-old"
    assert (envelope.attempts, envelope.first_seen) == (2, 1795427000.1234567)
    assert envelope.id == "0123456789abcdef0123456789abcdef"
    assert [h["error"] for h in envelope.history] == [None, "timed out"]
    # and the envelope, parked again, comes back the same from the compact form
    assert Envelope.from_dict(json.loads(_member(envelope))) == envelope


@pytest.fixture
def schedule(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RetrySchedule]:
    """A retry schedule under a key prefix of this test's own on the session's Redis."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("RELAY_KEY_PREFIX", f"t-parked-{uuid.uuid4().hex[:8]}")
    get_settings.cache_clear()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    schedule = RetrySchedule(client)
    try:
        yield schedule
    finally:
        client.delete(schedule.key)
        client.close()
        get_settings.cache_clear()


def test_old_and_new_members_are_listed_and_requeued_alike(schedule: RetrySchedule) -> None:
    # given a member an older version parked beside one parked now
    schedule.redis.zadd(schedule.key, {LONG_MEMBER: T - 10})
    new = Envelope(sample_event(), 1, T - 100, "n" * 32, [attempt(1)])
    schedule.park(new, T - 5)

    # when the operator lists them, and the pump re-queues them
    listed = [(e.id, due) for e, due in schedule.iter()]
    published: list[list[dict[str, Any]]] = []
    moved = RetryPump(schedule, published.append, interval=0.1, lease=60).pump_once(now=T)

    # then both are read in full, and the workers get envelopes they can rebuild
    assert sorted(listed) == [("0123456789abcdef0123456789abcdef", T - 10), ("n" * 32, T - 5)]
    assert moved == 2
    rebuilt = [Envelope.from_dict(item) for item in published[0]]
    assert rebuilt[0] == Envelope.from_dict(json.loads(LONG_MEMBER))
    assert rebuilt[1] == new
    assert schedule.count() == 0


def test_parked_members_stay_under_600_bytes_of_redis_memory(schedule: RetrySchedule) -> None:
    # given the bench's events parked after one 503 (the long form took about 710 bytes each)
    envelopes = parked()
    for envelope in envelopes:
        schedule.park(envelope, T + 3600)

    # when Redis accounts for the whole sorted set
    usage = int(schedule.redis.memory_usage(schedule.key, samples=0) or 0)

    # then each member costs well under the 1 KB a parked event may cost in all
    assert usage / len(envelopes) < 600
