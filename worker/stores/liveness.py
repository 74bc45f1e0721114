"""Liveness: each worker reports a heartbeat and when it last received a task.

Celery on Redis can stop consuming after a reconnect without any error (celery #8030, #10302).
The heartbeat lets `relay health` catch that: messages wait in the queue while no worker has
received one for a while. Use it as a liveness probe, per worker or for the whole fleet.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from typing import Any

from worker.stores.connection import get_redis, key, text_of

HEARTBEAT_EVERY = 5.0
HEARTBEAT_TTL = 30


class Heartbeat:
    """A thread that publishes this worker's liveness to Redis every few seconds."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.started = time.time()
        self.last_task_at: float | None = None
        self.tasks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-heartbeat", daemon=True)

    def task_received(self) -> None:
        self.last_task_at = time.time()
        self.tasks += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def beat(self) -> None:
        state = {
            "name": self.name,
            "pid": os.getpid(),
            "started": self.started,
            "seen_at": time.time(),
            "last_task_at": self.last_task_at,
            "tasks": self.tasks,
        }
        # Listed in a sorted set by when it beat, so `relay health` (a probe, every few
        # seconds) finds the workers without a SCAN of the whole keyspace.
        now = time.time()
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(key("workers", self.name), json.dumps(state), ex=HEARTBEAT_TTL)
        pipe.zadd(seen_key(), {self.name: now})
        pipe.zremrangebyscore(seen_key(), "-inf", now - 10 * HEARTBEAT_TTL)
        pipe.execute()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # Redis may be restarting: beat again later
                self.beat()
            self._stop.wait(HEARTBEAT_EVERY)


def seen_key() -> str:
    """Workers by when they last beat (a sorted set)."""
    return key("workers-seen")


def workers() -> list[dict[str, Any]]:
    """Every worker whose heartbeat is fresh."""
    client = get_redis()
    recent = client.zrangebyscore(seen_key(), time.time() - HEARTBEAT_TTL, "+inf")
    names = [key("workers", text_of(name)) for name in recent]
    found = []
    for raw in client.mget(names) if names else []:
        if raw:
            found.append(json.loads(text_of(raw)))
    return found


def check_health(queue_depth: int, max_idle: float, worker: str | None = None) -> list[str]:
    """Problems that mean the fleet (or one worker) is not consuming; empty when healthy."""
    now = time.time()
    live = [w for w in workers() if worker is None or w["name"] == worker]
    if not live:
        return [
            f"no live worker{' named ' + worker if worker else ''} (no heartbeat in "
            f"{HEARTBEAT_TTL}s)"
        ]
    if queue_depth == 0:
        return []
    idle = [w for w in live if now - (w["last_task_at"] or w["started"]) > max_idle]
    if len(idle) == len(live):
        return [
            f"{queue_depth} message(s) waiting but {w['name']} has received nothing for "
            f"{now - (w['last_task_at'] or w['started']):.0f}s"
            for w in idle
        ]
    return []
