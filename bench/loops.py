"""The hand-written loop: the baseline the relay is compared with.

What an engineer would write without the relay, as lean as it gets: BRPOP an event, decode it,
build one JSON body from its fields, POST it with a `requests.Session`, next. None of the
relay's own code runs in it (no schema, no translator, no coalescing), no retries, no dead
letters, no bookkeeping in Redis: so the ratio to it says what the relay costs or saves.
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
    cpu_seconds: float


def _routes(config_path: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Each target's URL and headers (read from the bench's targets file, not translated)."""
    from worker.config import load_config

    routes = {}
    for name, target in load_config(config_path, os.environ).targets.items():
        auth = {"Authorization": f"Bearer {target.auth.params['token']}"}
        headers = {"Content-Type": "application/json", **auth}
        if target.kind == "salesforce":
            url = f"{target.base_url}/api/v1/acknowledgement"
        else:
            url = f"{target.base_url}/apis/v0/channels/{target.options.channel_guid}/messages"
        routes[name] = (url, headers)
    return routes


def _body(raw: dict[str, Any]) -> bytes:
    """One request body from an event's fields: what a hand-written integration posts."""
    document = {
        "id": raw["event_id"],
        "status": raw["status"],
        "messages": raw["message_ids"],
        "to": raw["channel"],
        "time": raw["occurred_at"],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _consume(
    redis_url: str, config_path: str, cap: float, barrier: Barrier, out: Any
) -> None:  # runs in a forked child
    routes = _routes(config_path)
    client = redis.Redis.from_url(redis_url)
    session = requests.Session()
    client.ping()  # connect before the clock starts, as a long-running loop would have
    barrier.wait()
    cpu_before = time.process_time()
    start = last = time.monotonic()
    deadline = start + cap
    done = failures = 0
    while time.monotonic() < deadline:
        item = client.brpop([QUEUE], timeout=1)
        if item is None:
            break  # the list was preloaded: empty means finished
        raw = json.loads(item[1])
        url, headers = routes[raw["target"]]
        response = session.post(url, data=_body(raw), headers=headers, timeout=10)
        failures += response.status_code >= 300
        done += 1
        last = time.monotonic()
    cpu = time.process_time() - cpu_before
    out.put((start, last, done, failures, rss_kb(os.getpid()), cpu))


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
        cpu_seconds=sum(r[5] for r in reports),
    )
