"""The retry schedule and its pump on a real Redis: due claims, leases, releases."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import redis

from tasks.envelope import Envelope
from tests.stores.builders import LEASE, T, envelope
from worker.stores.pump import RetryPump
from worker.stores.retries import RetrySchedule

pytestmark = pytest.mark.timeout(30)


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
    start, raced = threading.Barrier(2), threading.Barrier(2)
    results: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def claim(slot: int) -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            own = RetrySchedule(client)
            start.wait(timeout=10)
            # Each takes one batch before either goes on: on a loaded machine one thread could
            # otherwise claim everything before the other is scheduled, and race nobody.
            results[slot].extend(own.claim_due(T, 3, LEASE))
            raced.wait(timeout=10)
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
