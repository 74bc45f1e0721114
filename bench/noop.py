"""A Celery no-op task on the same Redis: what Celery itself costs per message.

`celery -A bench.noop worker` runs this app. The task receives the event (so messages have the
relay's sizes) and does nothing. The runner publishes the messages once, keeps them in a stash
list, and for each run copies the stash onto the queue in one command, so that every run
measures consumption alone, starting with the workers already waiting.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from bench.common import (
    Accountant,
    blocked_consumers,
    start_group,
    stop_group,
    tree_rss_mb,
    wait_until,
)

QUEUE = "bench-noop"
STASH = "bench-noop:stash"
UNACKED = "unacked"  # kombu's Redis transport keeps reserved, unacked messages here

app = Celery("bench-noop", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    result_backend=None,
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")  # type: ignore[untyped-decorator]
def noop(event: Any) -> None:
    """Nothing: the cost measured is Celery's."""
    del event


@dataclass(frozen=True)
class NoopSetup:
    """A worker layout: the pool, its size, and how many worker processes."""

    label: str
    pool: str
    concurrency: int
    workers: int


def stash(client: redis.Redis, events: list[Any]) -> float:
    """Publish one message per event into the stash; return the publish rate (events/s)."""
    client.delete(QUEUE, STASH, UNACKED, "unacked_index")
    started = time.monotonic()
    with app.producer_or_acquire() as producer:
        for event in events:
            noop.apply_async(args=[event], producer=producer)
    elapsed = time.monotonic() - started
    client.rename(QUEUE, STASH)
    return len(events) / elapsed


def _drained(client: redis.Redis, accountant: Accountant) -> bool:
    pipe = client.pipeline(transaction=False)
    pipe.llen(QUEUE)
    pipe.hlen(UNACKED)
    accountant.own += 2
    queued, unacked = pipe.execute()
    return int(queued) == 0 and int(unacked) == 0


def run_noop(
    client: redis.Redis, setup: NoopSetup, runs: int, count: int, cap: float, logs: Path
) -> tuple[list[float], float, float]:
    """Start the workers once, drain the stash `runs` times: (rates, RSS MB, cmds/message)."""
    env = {**os.environ}
    workers = []
    for i in range(setup.workers):
        argv = [sys.executable, "-m", "celery", "-A", "bench.noop", "worker", "-P", setup.pool]
        argv += ["-c", str(setup.concurrency), "-n", f"noop{i}-{os.getpid()}@%h", "-Q", QUEUE]
        argv += ["--without-mingle", "--without-gossip"]
        workers.append(start_group(argv, logs / f"noop-{setup.pool}-{i}.log", env))
    rates: list[float] = []
    cmds = 0
    try:
        if not wait_until(lambda: blocked_consumers(client, QUEUE) >= setup.workers, 60, 0.2):
            raise RuntimeError(f"no-op workers did not start; see {logs}")
        time.sleep(1.0)  # let the pool threads/children settle
        accountant = Accountant(client)
        for _ in range(runs):
            accountant.begin()
            started = time.monotonic()
            client.copy(STASH, QUEUE)
            accountant.own += 1
            wait_until(lambda: _drained(client, accountant), cap, 0.02)
            elapsed = time.monotonic() - started
            cmds += accountant.end()
            rates.append(count / elapsed)
            client.delete(QUEUE)  # only non-empty after a capped run
        rss = tree_rss_mb([w.pid for w in workers])
    finally:
        for worker in workers:
            stop_group(worker)
    return rates, rss, cmds / (count * runs)
