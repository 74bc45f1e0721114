"""The inbox and its bundler on a real Redis: bundles, linger, bad items, failures, orphans."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.support.harness import own_key_prefix
from worker.intake.bundler import Bundler
from worker.intake.inbox import Inbox
from worker.intake.inflight import recover_orphans
from worker.ops.status import collect_status, render_status
from worker.stores.connection import key
from worker.stores.deadletters import DeadLetterStore

pytestmark = pytest.mark.timeout(10)

LINGER = 0.002


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with own_key_prefix(redis_url, monkeypatch, "t-inbox") as name:
        yield name


class Recorder:
    """The bundler's publisher in these tests: keeps each bundle; can fail its first calls."""

    def __init__(self, failures: int = 0) -> None:
        self.bundles: list[list[Any]] = []
        self.failures = failures
        self.published = threading.Event()

    def __call__(self, events: list[Any]) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker unavailable")
        self.bundles.append(events)
        self.published.set()
        return len(events)


@pytest.fixture
def inbox(prefix: str, redis_client: redis.Redis) -> Inbox:
    return Inbox(redis_client)


@pytest.fixture
def make_bundler(prefix: str, raw_client: redis.Redis) -> Callable[..., Bundler]:
    def make(publish: Recorder, owner: str = "w1:100", bundle_size: int = 50) -> Bundler:
        return Bundler(raw_client, publish, owner, bundle_size, LINGER)

    return make


def events(n: int) -> list[str]:
    return [json.dumps({"event_id": f"e{i}"}) for i in range(n)]


def test_bulk_push_travels_in_full_bundles_in_order(
    inbox: Inbox, make_bundler: Callable[..., Bundler], redis_client: redis.Redis
) -> None:
    # given 120 events waiting and a bundler of 50
    inbox.push(events(120))
    recorder = Recorder()
    bundler = make_bundler(recorder)

    # when it runs until the inbox is dry (the last round without waiting)
    counts = [bundler.bundle_once(0.1) for _ in range(3)] + [bundler.bundle_once(0)]

    # then three bundles went out, full ones first, in push order, and nothing is left behind
    assert counts == [50, 50, 20, 0]
    assert [len(b) for b in recorder.bundles] == [50, 50, 20]
    sent = [e["event_id"] for b in recorder.bundles for e in b]
    assert sent == [f"e{i}" for i in range(120)]
    assert inbox.depth() == 0
    assert redis_client.llen(bundler.inflight) == 0


def test_single_push_is_published_within_the_linger(
    inbox: Inbox,
    make_bundler: Callable[..., Bundler],
    redis_client: redis.Redis,
    figures: Callable[..., None],
) -> None:
    # given a running bundler waiting on an empty inbox
    recorder = Recorder()
    bundler = make_bundler(recorder)
    bundler.start()
    try:
        time.sleep(0.05)

        # when one event is pushed
        started = time.monotonic()
        inbox.push(events(1))
        assert recorder.published.wait(2)
        latency = time.monotonic() - started
    finally:
        bundler.stop()

    # then it went out alone, at once (linger + a round trip or two), and the lease is handed back
    figures(single_push_latency_ms=round(latency * 1000, 1), linger_ms=LINGER * 1000)
    assert recorder.bundles == [[{"event_id": "e0"}]]
    assert latency < 0.5
    assert redis_client.exists(bundler.lease) == 0


def test_items_that_are_not_json_or_too_big_become_dead_letters(
    inbox: Inbox, make_bundler: Callable[..., Bundler]
) -> None:
    # given a good event, a line of garbage and an event far over RELAY_MAX_EVENT_BYTES
    huge = json.dumps({"event_id": "big", "padding": "x" * 100_000})
    inbox.push(['{"event_id": "ok"}', "not json {", huge])
    recorder = Recorder()

    # when bundled
    make_bundler(recorder).bundle_once(0.1)

    # then the good one travels on, and the others are invalid dead letters saying why
    assert recorder.bundles == [[{"event_id": "ok"}]]
    letters = {str(d.event)[:10]: d for d in DeadLetterStore().iter()}
    assert letters["not json {"].reason == "invalid"
    assert letters["not json {"].error.startswith("an inbox item is not JSON")
    (big,) = [d for k, d in letters.items() if k.startswith('{"event_i')]
    assert "over the 65536-byte limit (RELAY_MAX_EVENT_BYTES)" in big.error
    assert len(str(big.event)) < 2_000  # only a prefix is kept


def test_failed_publish_keeps_events_inflight_until_the_next_round(
    inbox: Inbox, make_bundler: Callable[..., Bundler], redis_client: redis.Redis
) -> None:
    # given a publisher that fails once
    inbox.push(events(3))
    recorder = Recorder(failures=1)
    bundler = make_bundler(recorder)

    # when a round fails
    with pytest.raises(ConnectionError):
        bundler.bundle_once(0.1)

    # then the events wait in the inflight list, not in memory, and the lease guards them
    assert redis_client.lrange(bundler.inflight, 0, -1) == events(3)
    assert inbox.depth() == 0
    assert redis_client.ttl(bundler.lease) > 0

    # and the next round publishes exactly them, then clears the inflight list
    assert bundler.bundle_once(0.1) == 3
    assert recorder.bundles == [[json.loads(e) for e in events(3)]]
    assert redis_client.llen(bundler.inflight) == 0


def test_running_bundler_survives_a_failed_publish(
    inbox: Inbox, make_bundler: Callable[..., Bundler]
) -> None:
    # given a running bundler whose publisher fails twice
    recorder = Recorder(failures=2)
    bundler = make_bundler(recorder)
    bundler.start()
    try:
        # when events arrive
        inbox.push(events(2))

        # then the thread keeps going and publishes them once the publisher recovers
        assert recorder.published.wait(5)
    finally:
        bundler.stop()
    assert recorder.bundles == [[{"event_id": "e0"}, {"event_id": "e1"}]]


def test_recover_orphans_returns_a_dead_owners_events_to_the_front(
    inbox: Inbox, redis_client: redis.Redis
) -> None:
    # given a newer event in the inbox, a dead bundler's inflight list (no lease)
    # and a live bundler's (lease present)
    inbox.push(["new"])
    redis_client.rpush(key("inflight", "dead:1"), "old1", "old2")
    redis_client.rpush(key("inflight", "alive:2"), "busy")
    redis_client.set(key("inflight-lease", "alive:2"), "alive:2", ex=30)

    # when orphans are recovered
    moved = recover_orphans(redis_client)

    # then the dead one's events lead the inbox, oldest first; the live one's are untouched
    assert moved == 2
    assert redis_client.lrange(inbox.key, 0, -1) == ["old1", "old2", "new"]
    assert redis_client.exists(key("inflight", "dead:1")) == 0
    assert redis_client.lrange(key("inflight", "alive:2"), 0, -1) == ["busy"]


def test_push_of_2500_events_lands_all_of_them(inbox: Inbox) -> None:
    # when a producer pushes 2,500 events (three chunks), from a generator
    pushed = inbox.push(iter(events(2500)))

    # then all wait in the inbox, in order
    assert pushed == 2500
    assert inbox.depth() == 2500
    assert inbox.redis.lindex(inbox.key, -1) == events(2500)[-1]


def test_status_shows_the_inbox_beside_the_queue(inbox: Inbox) -> None:
    # given events waiting in the inbox
    inbox.push(events(3))

    # when the operator asks for the status
    report = collect_status()

    # then both the JSON and the table tell how many
    assert report["queue"]["inbox"] == 3
    assert "inbox: 3 event(s) waiting" in render_status(report)
