"""The inbox and its feeder on a real Redis: bundles sized by the backlog, lanes, ids that
survive a dead worker, bad items, Redis trouble, orphans."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tasks.envelope import Envelope
from tests.support.harness import own_key_prefix
from worker.intake.feeder import Feeder
from worker.intake.inbox import Inbox
from worker.intake.inflight import lane_keys, lane_name, lanes, lanes_key, recover_orphans
from worker.ops.status import collect_status, render_status
from worker.stores.connection import key
from worker.stores.deadletters import DeadLetterStore

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with own_key_prefix(redis_url, monkeypatch, "t-inbox") as name:
        yield name


class Recorder:
    """The feeder's delivery in these tests: keeps each bundle; can fail its first calls as
    Redis would, and can hold a bundle until released."""

    def __init__(self, failures: int = 0, hold: bool = False) -> None:
        self.bundles: list[list[Envelope]] = []
        self.failures = failures
        self.delivered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, envelopes: list[Envelope], settled: set[str]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise redis.ConnectionError("Redis went away")
        self.release.wait(5)
        self.bundles.append(envelopes)
        settled.update(e.id for e in envelopes)
        self.delivered.set()

    def events(self) -> list[list[Any]]:
        return [[e.event for e in bundle] for bundle in self.bundles]


@pytest.fixture
def inbox(prefix: str, redis_client: redis.Redis) -> Inbox:
    return Inbox(redis_client)


@pytest.fixture
def make_feeder(prefix: str, raw_client: redis.Redis) -> Callable[..., Feeder]:
    def make(deliver: Recorder, owner: str = "w1@h:100", lanes: int = 2, size: int = 50) -> Feeder:
        return Feeder(raw_client, deliver, owner, lanes, size)

    return make


def events(n: int) -> list[str]:
    return [json.dumps({"event_id": f"e{i}"}) for i in range(n)]


def test_a_backlog_travels_in_full_bundles_in_order(
    inbox: Inbox, make_feeder: Callable[..., Feeder], redis_client: redis.Redis
) -> None:
    # given 120 events waiting and a feeder of bundles of 50
    inbox.push(events(120))
    recorder = Recorder()
    feeder = make_feeder(recorder)

    # when it takes bundles into a lane and delivers them until the inbox is dry
    for _ in range(4):
        items = feeder.take(0, 0)
        if items:
            feeder.deliver_lane(0, items)

    # then three bundles went, full ones first, in push order, each event with its own id,
    # and the lane is empty
    assert [len(b) for b in recorder.bundles] == [50, 50, 20]
    sent = [e["event_id"] for b in recorder.events() for e in b]
    assert sent == [f"e{i}" for i in range(120)]
    ids = [e.id for b in recorder.bundles for e in b]
    assert len(set(ids)) == 120
    assert inbox.depth() == 0
    assert redis_client.llen(lane_keys(lane_name("w1@h:100", 0))[0]) == 0


def test_a_lone_push_is_delivered_at_once(
    inbox: Inbox, make_feeder: Callable[..., Feeder], redis_client: redis.Redis, figures: Any
) -> None:
    # given a running feeder waiting on an empty inbox
    recorder = Recorder()
    feeder = make_feeder(recorder)
    feeder.start()
    try:
        time.sleep(0.05)

        # when one event is pushed
        started = time.monotonic()
        inbox.push(events(1))
        assert recorder.delivered.wait(2)
        latency = time.monotonic() - started
    finally:
        assert feeder.stop(5)

    # then it went alone, at once (no waiting for company), and the lease is handed back
    figures(single_push_to_delivery_ms=round(latency * 1000, 1))
    assert recorder.events() == [[{"event_id": "e0"}]]
    assert latency < 0.5
    assert redis_client.exists(feeder.lease) == 0


def test_while_the_lanes_are_busy_the_next_bundle_grows(
    inbox: Inbox, make_feeder: Callable[..., Feeder]
) -> None:
    # given a feeder of one lane whose first delivery is held up
    recorder = Recorder(hold=True)
    feeder = make_feeder(recorder, lanes=1)
    feeder.start()
    try:
        inbox.push(events(1))
        time.sleep(0.2)  # the lone event is in the lane, waiting for its delivery

        # when ten more arrive one by one while the lane is busy, then it frees up
        for item in events(11)[1:]:
            inbox.push([item])
        recorder.release.set()
        deadline = time.monotonic() + 5
        while sum(len(b) for b in recorder.bundles) < 11 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        assert feeder.stop(5)

    # then the lone event went alone and the ten waiting ones together
    assert [len(b) for b in recorder.bundles] == [1, 10]


def test_items_that_cannot_be_read_become_dead_letters(
    inbox: Inbox, make_feeder: Callable[..., Feeder]
) -> None:
    # given a good event, a line of garbage and an event far over RELAY_MAX_EVENT_BYTES
    huge = json.dumps({"event_id": "big", "padding": "x" * 100_000})
    inbox.push(['{"event_id": "ok"}', "not json {", huge])
    recorder = Recorder()
    feeder = make_feeder(recorder)

    # when they are taken and delivered
    feeder.deliver_lane(0, feeder.take(0, 0.1))

    # then the good one is delivered, the others are invalid dead letters saying why
    assert recorder.events() == [[{"event_id": "ok"}]]
    letters = {str(d.event)[:10]: d for d in DeadLetterStore().iter()}
    assert letters["not json {"].reason == "invalid"
    assert letters["not json {"].error.startswith("an inbox item is not JSON")
    (big,) = [d for k, d in letters.items() if k.startswith('{"event_i')]
    assert "over the 65536-byte limit (RELAY_MAX_EVENT_BYTES)" in big.error
    assert len(str(big.event)) < 2_000  # only a prefix is kept


def test_redis_trouble_while_delivering_keeps_the_bundle_in_its_lane_until_done(
    inbox: Inbox, make_feeder: Callable[..., Feeder], redis_client: redis.Redis
) -> None:
    # given a delivery that fails twice as if Redis were away
    inbox.push(events(3))
    recorder = Recorder(failures=2)
    feeder = make_feeder(recorder)
    items = feeder.take(0, 0.1)
    lane = lane_keys(lane_name("w1@h:100", 0))[0]

    # then, before delivery, the events wait in the lane, not only in memory, leased
    assert redis_client.llen(lane) == 3 and inbox.depth() == 0
    assert redis_client.ttl(feeder.lease) > 0

    # and once delivered (the third time, with the same envelope ids) the lane is empty
    feeder.deliver_lane(0, items)
    assert recorder.events() == [[json.loads(e) for e in events(3)]]
    assert redis_client.llen(lane) == 0


def test_a_dead_workers_lane_returns_to_the_inbox_with_its_ids(
    inbox: Inbox, make_feeder: Callable[..., Feeder], raw_client: redis.Redis
) -> None:
    # given a worker that took two events into a lane and died (its lease gone)
    inbox.push(events(2))
    dead = make_feeder(Recorder(), owner="dead@h:1")
    taken = dead.take(0, 0.1)
    raw_client.delete(dead.lease)
    inbox.push(["new"])

    # when orphans are recovered and another worker takes the inbox
    moved = recover_orphans(raw_client)
    recorder = Recorder()
    alive = make_feeder(recorder, owner="alive@h:2")
    alive.deliver_lane(0, alive.take(0, 0.1))

    # then the dead one's events came first, in order, under the ids the dead worker gave them
    assert moved == 2
    assert taken[0].startswith(b"\x01r:")
    first_ids = [item.split(b"\n")[0][3:].decode() for item in taken]
    [bundle] = recorder.bundles
    assert [e.id for e in bundle[:2]] == first_ids
    assert [e.event for e in bundle[:2]] == [json.loads(e) for e in events(2)]


def test_a_live_workers_lane_is_left_alone(
    inbox: Inbox, make_feeder: Callable[..., Feeder], raw_client: redis.Redis
) -> None:
    # given a live worker holding a bundle in its lane
    inbox.push(events(2))
    busy = make_feeder(Recorder(), owner="busy@h:3")
    busy.take(0, 0.1)

    # when orphans are recovered
    moved = recover_orphans(raw_client)

    # then nothing moves
    assert moved == 0
    assert raw_client.llen(lane_keys(lane_name("busy@h:3", 0))[0]) == 2


def test_an_item_a_lost_reply_left_in_a_live_workers_lane_is_still_delivered(
    make_feeder: Callable[..., Feeder], raw_client: redis.Redis
) -> None:
    # given a live worker whose lane holds an event its BLMOVE moved but whose reply it never
    # read (the connection dropped, or a failover undid the lane's removal), the inbox empty
    recorder = Recorder()
    feeder = make_feeder(recorder, owner="live@h:4")
    items_key, _, since = lane_keys(lane_name("live@h:4", 0))
    raw_client.rpush(items_key, json.dumps({"event_id": "stranded"}))

    # when the feeder waits on the empty inbox with that lane, and again once it was delivered
    taken = feeder.take(0, 0.1)
    feeder.deliver_lane(0, taken)
    idle = feeder.take(0, 0.1)

    # then the stranded event came back from the lane itself, with an id, and was delivered;
    # an idle lane leaves no trace behind
    assert recorder.events() == [[{"event_id": "stranded"}]]
    assert taken[0].startswith(b"\x01r:")
    assert idle == [] and raw_client.exists(items_key, since) == 0


def test_lanes_are_found_from_their_set_and_leave_it_once_recovered(
    inbox: Inbox, make_feeder: Callable[..., Feeder], raw_client: redis.Redis
) -> None:
    # given a dead worker's lane (listed in the set), and an older release's lane (not listed)
    inbox.push(events(3))
    dead = make_feeder(Recorder(), owner="gone@h:7")
    dead.take(0, 0.1)
    raw_client.delete(dead.lease)
    raw_client.rpush(key("inflight", "old@h"), b"{}")
    listed = lanes(raw_client)

    # when orphans are recovered as the feeder does it (the set only), then as a worker's
    # start does it (with a scan)
    periodic = recover_orphans(raw_client)
    at_start = recover_orphans(raw_client, scan=True)

    # then the listed lane was found without a scan and left the set, the other one only by
    # the scan, and every item is back in the inbox
    assert lane_name("gone@h:7", 0) in listed and "old@h" not in listed
    assert (periodic, at_start) == (3, 1)
    assert not [n for n in raw_client.smembers(lanes_key()) if n.startswith(b"gone@")]
    assert inbox.depth() == 4


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
