"""The hand-written loop: the ceiling the relay is compared with (issue 5).

What an engineer would write without Celery: BRPOP an event, decode it, validate and translate
it with the relay's own pure code (so both do the same work per event), POST each request with
a `requests.Session`, next. No retries, no dead letters, no bookkeeping in Redis.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import redis
import requests

from bench.common import Accountant, rss_kb

QUEUE = "bench:loop"


@dataclass(frozen=True)
class LoopRun:
    rate: float
    events: int
    failures: int
    redis_cmds: int
    rss_mb: float


def _consume(
    redis_url: str, config_path: str, cap: float, barrier: Barrier, out: Any
) -> None:  # runs in a forked child
    from tasks.outbound import Skip
    from tasks.schemas import load_event
    from tasks.targets import TARGET_KINDS
    from worker.config import load_config

    config = load_config(config_path, os.environ)
    routes = {
        name: (
            TARGET_KINDS[t.kind],
            t.options,
            {"Authorization": f"Bearer {t.auth.params['token']}"},
        )
        for name, t in config.targets.items()
    }
    client = redis.Redis.from_url(redis_url)
    session = requests.Session()
    client.ping()  # connect before the clock starts, as a long-running loop would have
    barrier.wait()
    start = last = time.monotonic()
    deadline = start + cap
    done = failures = 0
    while time.monotonic() < deadline:
        item = client.brpop([QUEUE], timeout=1)
        if item is None:
            break  # the list was preloaded: empty means finished
        raw = json.loads(item[1])
        kind, options, auth = routes[raw["target"]]
        plan = kind.translate(load_event(raw), options)
        if not isinstance(plan, Skip):
            for request in plan:
                response = session.post(
                    request.url, data=request.body, headers={**request.headers, **auth}, timeout=10
                )
                failures += response.status_code >= 300
        done += 1
        last = time.monotonic()
    out.put((start, last, done, failures, rss_kb(os.getpid())))


def run_loop(
    redis_url: str, config_path: str, events: list[str], processes: int, cap: float
) -> LoopRun:
    """Preload `events` into a Redis list, then drain it with `processes` forked loops."""
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE)
    for i in range(0, len(events), 1000):
        client.rpush(QUEUE, *events[i : i + 1000])
    # fork: the children inherit the imported modules, so start-up is not part of the figure.
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    out = ctx.Queue()
    children = [
        # daemon: an error or Ctrl-C in the bench ends them too
        ctx.Process(target=_consume, args=(redis_url, config_path, cap, barrier, out), daemon=True)
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    accountant = Accountant(client)
    accountant.begin()
    barrier.wait(timeout=60)
    reports = [out.get(timeout=cap + 120) for _ in children]
    cmds = accountant.end()
    for child in children:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    client.delete(QUEUE)  # what a capped run left behind
    elapsed = max(r[1] for r in reports) - min(r[0] for r in reports)
    done = sum(r[2] for r in reports)
    return LoopRun(
        rate=done / elapsed if elapsed > 0 else 0.0,
        events=done,
        failures=sum(r[3] for r in reports),
        redis_cmds=cmds,
        rss_mb=sum(r[4] for r in reports) / 1024,
    )
