"""Redis restarted (AOF on) under load: nothing lost, workers resume without a restart."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.local_redis import LocalRedis
from worker.dev.sandbox import Fault, Sandbox
from worker.settings import get_settings

EVENTS = 1000


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A Redis of this test's own, persisting with AOF, that the test may restart."""
    server = LocalRedis(appendonly=True).start()
    yield server
    server.stop()


@pytest.mark.timeout(240)
def test_a_redis_restart_under_load_loses_nothing_and_workers_keep_consuming(
    tmp_path: Path,
    own_redis: LocalRedis,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    figures,
) -> None:
    # given two workers busy with a slow-ish target
    relay = Relay(tmp_path, own_redis.url, sandbox.url, monkeypatch)
    try:
        sandbox.add_fault(Fault(api="medallia", delay=0.02, times=0))
        workers = [relay.start_worker("a"), relay.start_worker("b")]
        events = [event("md", "delivered") for _ in range(EVENTS)]
        relay.push(*events)
        wait_for(lambda: relay.counts("md").get("delivered", 0) >= 100, 60, "deliveries")

        # when Redis is restarted in the middle of it
        started = time.monotonic()
        own_redis.restart()
        restarted_in = time.monotonic() - started

        # then, with the same worker processes, every event is posted and none dead-lettered
        wanted = {e["message_ids"][0] for e in events}
        wait_for(lambda: wanted <= set(posted_ids(sandbox.requests())), 150, "every event")
        posts = Counter(posted_ids(sandbox.requests()))
        assert all(w.poll() is None for w in workers), "no worker died or was restarted"
        assert relay.dead_letters() == []
        health = relay.cli("health", "--max-idle", "30")
        figures(
            pushed=EVENTS,
            lost=len(wanted - set(posts)),
            duplicate_posts=sum(n - 1 for n in posts.values()),
            redis_down_seconds=round(restarted_in, 2),
            all_posted_after_seconds=round(time.monotonic() - started, 1),
            health=health.stdout.strip() or health.stderr.strip(),
        )
        assert health.returncode == 0
    finally:
        relay.stop_all()
        get_settings.cache_clear()
