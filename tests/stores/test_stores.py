"""The Redis-held state on a real Redis: dead letters, the retry schedule and pump, counters."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from tasks.envelope import Envelope
from tests.support.harness import own_key_prefix
from worker.settings import get_settings
from worker.stores import deadletters
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.ledger import Admission, Entry, EventLedger
from worker.stores.pump import RetryPump
from worker.stores.retries import RetrySchedule

pytestmark = pytest.mark.timeout(30)

T = 1_700_000_000.0  # an explicit "now" for the retry schedule
LEASE = 60.0


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with own_key_prefix(redis_url, monkeypatch, "t-stores") as name:
        yield name


@pytest.fixture
def store(prefix: str, redis_client: redis.Redis) -> DeadLetterStore:
    return DeadLetterStore(redis_client)


@pytest.fixture
def schedule(prefix: str, redis_client: redis.Redis) -> RetrySchedule:
    return RetrySchedule(redis_client)


def letter(n: int, **overrides: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "reason": "rejected",
        "error": "HTTP 400: bad request",
        "event": {"event_id": f"evt-{n}", "target": "sf", "message_ids": [f"m-{n}"]},
        "attempts": 1,
        "event_id": f"evt-{n}",
        "target": "sf",
        "status_code": 400,
    }
    values.update(overrides)
    return DeadLetter(**values)


def envelope(n: int) -> Envelope:
    return Envelope(
        {"event_id": f"evt-{n}", "target": "md", "message_ids": [f"m-{n}"]},
        attempts=1,
        first_seen=T - 100,
    )


# -- dead letters ----------------------------------------------------------------------------


def test_dead_letter_add_get_remove_count(store: DeadLetterStore) -> None:
    assert store.count() == 0
    first = store.add(letter(1, history=[{"at": 1.0, "status": 400}], first_seen=T))
    second = store.add(letter(2, reason="invalid", event="not json", event_id=None, target=None))
    assert store.count() == 2
    assert store.get(first.id) == first
    assert store.get(second.id) == second
    assert store.get("no-such-id") is None
    assert [x.id for x in store.iter()] == [first.id, second.id]  # oldest first
    assert store.remove([first.id, "no-such-id"]) == 1
    assert store.get(first.id) is None
    assert store.count() == 1
    assert store.remove([]) == 0
    assert store.remove([first.id]) == 0
    assert [x.id for x in store.iter()] == [second.id]


@pytest.mark.parametrize(
    ("target", "reason", "expected"),
    [
        pytest.param(None, None, [0, 1, 2, 3, 4], id="all"),
        pytest.param("sf", None, [0, 2, 4], id="target"),
        pytest.param(None, "exhausted", [2, 3], id="reason"),
        pytest.param("sf", "exhausted", [2], id="target-and-reason"),
        pytest.param("md", "invalid", [], id="none-match"),
        pytest.param("nope", None, [], id="unknown-target"),
    ],
)
def test_dead_letter_iter_filters(
    store: DeadLetterStore, target: str | None, reason: str | None, expected: list[int]
) -> None:
    kinds = [("sf", "rejected"), ("md", "rejected"), ("sf", "exhausted"), ("md", "exhausted")]
    kinds.append(("sf", "unroutable"))
    added = [store.add(letter(n, target=t, reason=r)) for n, (t, r) in enumerate(kinds)]
    found = [x.id for x in store.iter(target=target, reason=reason)]
    assert found == [added[n].id for n in expected]


def test_dead_letter_store_is_bounded_by_size(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_SIZE", "3")
    get_settings.cache_clear()
    added = [store.add(letter(n)) for n in range(5)]
    assert store.count() == 3
    assert [x.id for x in store.iter()] == [x.id for x in added[2:]]
    for old in added[:2]:
        assert store.get(old.id) is None
    # the hash is trimmed too, not only the index
    assert store.redis.hlen(store.items) == 3


def test_dead_letter_store_is_bounded_by_age(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_AGE", "1")
    get_settings.cache_clear()
    old = store.add(letter(1))
    time.sleep(1.1)
    new = store.add(letter(2))
    assert store.get(old.id) is None
    assert [x.id for x in store.iter()] == [new.id]
    assert store.count() == 1


def test_dead_letter_age_bound_with_a_clock(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_AGE", "100")
    get_settings.cache_clear()
    clock = [T]
    monkeypatch.setattr(deadletters, "time", SimpleNamespace(time=lambda: clock[0]))
    first = store.add(letter(1))
    clock[0] = T + 50
    second = store.add(letter(2))
    clock[0] = T + 99
    third = store.add(letter(3))
    assert store.count() == 3  # nothing older than 100 s yet
    clock[0] = T + 120
    fourth = store.add(letter(4))
    assert [x.id for x in store.iter()] == [second.id, third.id, fourth.id]
    assert store.get(first.id) is None


def test_dead_letter_age_and_size_bounds_in_one_add(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_AGE", "100")
    monkeypatch.setenv("RELAY_DLQ_MAX_SIZE", "3")
    get_settings.cache_clear()
    clock = [T]
    monkeypatch.setattr(deadletters, "time", SimpleNamespace(time=lambda: clock[0]))
    added = []
    for n, at in enumerate([T, T + 50, T + 60]):
        clock[0] = at
        added.append(store.add(letter(n)))
    monkeypatch.setenv("RELAY_DLQ_MAX_SIZE", "2")
    get_settings.cache_clear()
    clock[0] = T + 120
    added.append(store.add(letter(3)))
    # T is too old, and of the rest only the 2 newest fit: T+50 goes as well
    assert [x.id for x in store.iter()] == [added[2].id, added[3].id]
    assert store.redis.hlen(store.items) == 2


# -- retry schedule --------------------------------------------------------------------------


def test_claim_due_returns_only_due_members(schedule: RetrySchedule) -> None:
    past, now, future = envelope(1), envelope(2), envelope(3)
    schedule.park(past, T - 30)
    schedule.park(now, T)
    schedule.park(future, T + 30)
    assert schedule.count() == 3
    claimed = schedule.claim_due(T, 100, LEASE)
    assert [Envelope.from_dict(json.loads(m)) for m in claimed] == [past, now]
    assert schedule.count() == 3  # claiming hides, it does not remove


def test_iter_lists_parked_envelopes_with_due_times(schedule: RetrySchedule) -> None:
    envelopes = [envelope(n) for n in range(3)]
    parked = {env.id: (env, T + n) for n, env in enumerate(envelopes)}
    for env, due in parked.values():
        schedule.park(env, due)
    seen = {env.id: (env.event, due) for env, due in schedule.iter()}
    assert seen == {key: (env.event, due) for key, (env, due) in parked.items()}


def test_parking_the_same_envelope_again_reschedules_it(schedule: RetrySchedule) -> None:
    env = envelope(1)
    schedule.park(env, T - 10)
    schedule.park(env, T + 10)
    assert schedule.count() == 1
    assert schedule.claim_due(T, 10, LEASE) == []
    assert len(schedule.claim_due(T + 10, 10, LEASE)) == 1


def test_claim_due_respects_the_limit_soonest_first(schedule: RetrySchedule) -> None:
    envelopes = [envelope(n) for n in range(5)]
    for n, env in enumerate(envelopes):
        schedule.park(env, T - 10 + n)
    first = schedule.claim_due(T, 2, LEASE)
    second = schedule.claim_due(T, 2, LEASE)
    rest = schedule.claim_due(T, 10, LEASE)
    ids = [[Envelope.from_dict(json.loads(m)).id for m in batch] for batch in (first, second, rest)]
    assert ids == [
        [envelopes[0].id, envelopes[1].id],
        [envelopes[2].id, envelopes[3].id],
        [envelopes[4].id],
    ]


def test_claimed_member_is_hidden_for_the_lease(schedule: RetrySchedule) -> None:
    schedule.park(envelope(1), T - 1)
    claimed = schedule.claim_due(T, 10, LEASE)
    assert len(claimed) == 1
    assert schedule.claim_due(T, 10, LEASE) == []
    assert schedule.claim_due(T + LEASE - 1, 10, LEASE) == []
    # the claimer died without releasing: after the lease another worker takes it back
    assert schedule.claim_due(T + LEASE, 10, LEASE) == claimed
    assert schedule.claim_due(T + LEASE + 1, 10, LEASE) == []
    assert schedule.claim_due(T + 2 * LEASE + 1, 10, LEASE) == claimed


def test_release_removes_members(schedule: RetrySchedule) -> None:
    for n in range(3):
        schedule.park(envelope(n), T - 1)
    claimed = schedule.claim_due(T, 2, LEASE)
    schedule.release(claimed)
    schedule.release([])
    assert schedule.count() == 1
    assert schedule.claim_due(T + 10 * LEASE, 10, LEASE) != claimed
    assert len(schedule.claim_due(T + 20 * LEASE, 10, LEASE)) == 1


def test_concurrent_claims_take_each_member_exactly_once(
    prefix: str, redis_url: str, schedule: RetrySchedule
) -> None:
    members = 200
    for n in range(members):
        schedule.park(envelope(n), T - 1 - n % 7)
    barrier = threading.Barrier(2)
    results: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def claim(slot: int) -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            own = RetrySchedule(client)
            barrier.wait(timeout=10)
            while batch := own.claim_due(T, 3, LEASE):
                results[slot].extend(batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=claim, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors
    assert not any(thread.is_alive() for thread in threads)
    every = results[0] + results[1]
    assert len(every) == members
    assert len(set(every)) == members
    ids = {Envelope.from_dict(json.loads(m)).event["event_id"] for m in every}
    assert ids == {f"evt-{n}" for n in range(members)}
    assert results[0] and results[1], "both threads should have claimed something"


# -- retry pump ------------------------------------------------------------------------------


def test_pump_requeues_due_envelopes_and_removes_them(schedule: RetrySchedule) -> None:
    published: list[list[dict[str, Any]]] = []
    pump = RetryPump(schedule, published.append, interval=0.1, lease=LEASE)
    due = [envelope(1), envelope(2)]
    later = envelope(3)
    schedule.park(due[0], T - 5)
    schedule.park(due[1], T)
    schedule.park(later, T + 5)

    assert pump.pump_once(now=T) == 2
    assert len(published) == 1
    assert [Envelope.from_dict(item) for item in published[0]] == due
    assert schedule.count() == 1
    assert [env.id for env, _ in schedule.iter()] == [later.id]

    assert pump.pump_once(now=T + 1) == 0
    assert len(published) == 1  # nothing due: publish not called
    assert pump.pump_once(now=T + 5) == 1
    assert [Envelope.from_dict(item) for item in published[1]] == [later]
    assert schedule.count() == 0


def test_pump_keeps_members_when_publish_fails(schedule: RetrySchedule) -> None:
    def broken(batch: list[dict[str, Any]]) -> None:
        raise ConnectionError("broker unreachable")

    due = [envelope(1), envelope(2)]
    for env in due:
        schedule.park(env, T - 1)
    pump = RetryPump(schedule, broken, interval=0.1, lease=LEASE)
    with pytest.raises(ConnectionError):
        pump.pump_once(now=T)
    assert schedule.count() == 2
    # hidden for the lease...
    published: list[list[dict[str, Any]]] = []
    pump = RetryPump(schedule, published.append, interval=0.1, lease=LEASE)
    assert pump.pump_once(now=T + LEASE - 1) == 0
    assert published == []
    # ...then re-queued by whichever pump looks next
    assert pump.pump_once(now=T + LEASE + 1) == 2
    assert sorted(Envelope.from_dict(item).id for item in published[0]) == sorted(
        env.id for env in due
    )
    assert schedule.count() == 0


# -- counters --------------------------------------------------------------------------------


def test_counters_incr_and_snapshot(prefix: str, redis_client: redis.Redis) -> None:
    counters = Counters(redis_client)
    assert counters.snapshot() == {}
    counters.incr("sf", "delivered")
    counters.incr("sf", "delivered", 2)
    counters.incr("sf", "retried")
    counters.incr("md", "dead")
    counters.incr(None, "dead", 4)
    assert counters.snapshot() == {
        "sf": {"delivered": 3, "retried": 1},
        "md": {"dead": 1},
        "-": {"dead": 4},
    }


def test_counters_see_only_their_own_prefix(
    prefix: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    Counters(redis_client).incr("sf", "delivered")
    other = f"{prefix}-other"
    monkeypatch.setenv("RELAY_KEY_PREFIX", other)
    get_settings.cache_clear()
    try:
        assert Counters(redis_client).snapshot() == {}
        Counters(redis_client).incr("sf", "dead")
        assert Counters(redis_client).snapshot() == {"sf": {"dead": 1}}
    finally:
        redis_client.delete(f"{other}:stats:sf")
        monkeypatch.setenv("RELAY_KEY_PREFIX", prefix)
        get_settings.cache_clear()
    assert Counters(redis_client).snapshot() == {"sf": {"delivered": 1}}


def test_event_ledger_claims_once_and_remembers_done_for_the_window(
    prefix: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DEDUP_WINDOW", "300")
    get_settings.cache_clear()
    ledger, admission = EventLedger(redis_client), Admission(redis_client)

    def claim(target: str, event_id: str, owner: str) -> bool:
        return admission.run([Entry(target, event_id, owner, hold=60)])[0][0]

    assert claim("sf", "evt-1", "env-a")
    assert claim("sf", "evt-1", "env-a"), "the owner may come back"
    assert not claim("sf", "evt-1", "env-b")
    assert claim("md", "evt-1", "env-c")
    ledger.done("sf", "evt-1")
    assert ledger.state("sf", "evt-1") == "done"
    assert not claim("sf", "evt-1", "env-a")
    ttl = redis_client.ttl(f"{prefix}:event:sf:evt-1")
    assert 0 < ttl <= 300
    ledger.forget("md", "evt-1")
    assert claim("md", "evt-1", "env-d")
