"""Redis Sentinel: the master dies under load, the sentinels promote the replica, nothing is lost.

REDIS_URL is kombu's sentinel:// form, so the broker (kombu's Sentinel transport with the relay's
changes), every store the workers keep, the test's own producer and the CLI all find the master
through the sentinels, before and after the failover.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.harness import Relay, event, posted_ids, wait_for
from tests.support.sentinel import SentinelGroup
from worker.dev.sandbox import Fault, Sandbox
from worker.intake.inbox import Inbox
from worker.settings import get_settings

EVENTS = 3000
CHUNK = 25


@pytest.fixture
def sentinels() -> Iterator[SentinelGroup]:
    group = SentinelGroup()
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture
def relay(
    tmp_path: Path, sentinels: SentinelGroup, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    """A relay whose REDIS_URL names the sentinels (instead of the session's Redis)."""
    relay = Relay(tmp_path, sentinels.url, sandbox.url, monkeypatch)
    try:
        yield relay
    finally:
        relay.stop_all()
        get_settings.cache_clear()


class Producer(threading.Thread):
    """Pushes events a chunk at a time, as a producer would, trying a chunk again while Redis
    fails over (a chunk that did land before the error is pushed twice: the relay's event_id
    claim counts the copy as a duplicate)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__(name="producer", daemon=True)
        self.events = events
        self.pushed = 0
        self.errors = 0

    def run(self) -> None:
        inbox = Inbox()
        for start in range(0, len(self.events), CHUNK):
            chunk = [json.dumps(e) for e in self.events[start : start + CHUNK]]
            deadline = time.monotonic() + 60
            while True:
                try:
                    inbox.push(chunk)
                    break
                except redis.RedisError:
                    self.errors += 1
                    assert time.monotonic() < deadline, "Redis did not come back within 60 s"
                    time.sleep(0.2)
            self.pushed += len(chunk)
            time.sleep(0.01)


def settled_ids(relay: Relay, sandbox: Sandbox) -> tuple[Counter[str], set[str]]:
    """Message ids posted (with how many times) and ids held in the dead-letter store."""
    posts = Counter(posted_ids(sandbox.requests()))
    dead = {m for d in relay.dead_letters() for m in (d.event or {}).get("message_ids", [])}
    return posts, dead


def wait_all_settled(relay: Relay, sandbox: Sandbox, wanted: set[str]) -> None:
    """Wait until every message id was posted or dead-lettered; on a timeout say where they are."""
    try:
        wait_for(lambda: wanted <= set().union(*settled_ids(relay, sandbox)), 120, "every event")
    except AssertionError as timed_out:
        raise AssertionError(where_they_are(relay, sandbox, wanted)) from timed_out


def where_they_are(relay: Relay, sandbox: Sandbox, wanted: set[str]) -> str:
    """On a timeout: how many events are missing, what Redis still holds, what workers said."""
    from worker.ops.status import queue_depth
    from worker.stores.connection import get_redis, scan_match

    posts, dead = settled_ids(relay, sandbox)
    client = get_redis()
    said = [
        line
        for log in sorted(relay.tmp.glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if "WARNING" in line or "ERROR" in line or "CRITICAL" in line
    ]
    return (
        f"missing {len(wanted - set(posts) - dead)} of {len(wanted)}; inbox "
        f"{Inbox().depth()}, queue {queue_depth()}, unacked {client.hlen('unacked')}, inflight "
        f"{sum(client.llen(k) for k in client.scan_iter(match=scan_match('inflight', '')))}, "
        f"retries {relay.retries_waiting()}; worker warnings:\n" + "\n".join(said[-40:])
    )


@pytest.mark.timeout(200)
def test_a_master_killed_under_load_fails_over_and_nothing_is_lost(
    relay: Relay,
    sentinels: SentinelGroup,
    sandbox: Sandbox,
    figures: Callable[..., None],
) -> None:
    # given two workers and a producer reaching Redis only through the sentinels
    sandbox.add_fault(Fault(api="medallia", delay=0.02, times=0))
    workers = [relay.start_worker("a"), relay.start_worker("b")]
    events = [event("md" if i % 2 else "sf", "delivered") for i in range(EVENTS)]
    producer = Producer(events)
    producer.start()
    wait_for(lambda: producer.pushed >= EVENTS // 3, 60, "a third of the events pushed")

    # when the master is killed mid-stream
    before = len(settled_ids(relay, sandbox)[0])
    killed_at = sentinels.kill_master()
    sentinels.wait_failover()
    failover_seconds = time.monotonic() - killed_at
    producer.join(timeout=120)

    # then every event is posted or held as a dead letter, by the same worker processes
    wanted = {m for e in events for m in e["message_ids"]}
    wait_all_settled(relay, sandbox, wanted)
    posts, dead = settled_ids(relay, sandbox)
    lost = wanted - set(posts) - dead
    figures(
        events=EVENTS,
        delivered_before_kill=before,
        lost=len(lost),
        dead_letters=len(dead),
        duplicate_posts=sum(n - 1 for n in posts.values()),
        failover_seconds=round(failover_seconds, 1),
        producer_retries=producer.errors,
        all_settled_after_seconds=round(time.monotonic() - killed_at, 1),
    )
    assert not lost
    assert 0 < before < EVENTS, "the master died while events were on their way"
    assert not producer.is_alive() and all(w.poll() is None for w in workers), "none died"
    assert relay.cli("status", "--json").returncode == 0  # the CLI finds the new master too
