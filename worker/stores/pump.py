"""The retry pump: a thread in every worker that re-queues parked retries when they fall due."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from tasks.envelope import is_newer
from worker.stores.breaker import CircuitBreaker
from worker.stores.retries import RetrySchedule

log = logging.getLogger("relay.pump")
NEWER_PAUSE = 30.0  # seconds a member of a newer format is put off, for a newer worker's pump
CLAIM_LIMIT = 500  # due entries claimed per round trip; a full claim means: look again at once


class PumpThread:
    """A daemon thread that calls `pump_once` every `interval` seconds (at once again after a
    full claim) and keeps going through any error: a stopped pump strands what it pumps."""

    name = "relay-pump"
    what = "pump"
    interval = 1.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pump_once(self, now: float | None = None) -> int:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.pump_once()
            except redis.RedisError as exc:
                log.warning("%s: Redis unavailable (%s); trying again", self.what, exc)
                moved = 0
            except Exception:
                log.exception("%s failed; trying again", self.what)
                moved = 0
            if moved < CLAIM_LIMIT:
                self._stop.wait(self.interval)


class RetryPump(PumpThread):
    """Moves due envelopes from the retry schedule back onto the delivery queue."""

    name, what = "relay-retry-pump", "retry pump"

    def __init__(
        self,
        schedule: RetrySchedule,
        publish: Callable[[list[dict[str, Any]]], object],
        interval: float,
        lease: float,
        hold: Callable[[dict[str, Any], float], float | None] = lambda envelope, now: None,
    ) -> None:
        self.schedule = schedule
        self.publish = publish
        self.hold = hold
        self.interval = interval
        self.lease = lease
        super().__init__()

    def pump_once(self, now: float | None = None) -> int:
        """Re-queue what is due; return how many envelopes moved."""
        now = time.time() if now is None else now
        members = self.schedule.claim_due(now, CLAIM_LIMIT, self.lease)
        if not members:
            return 0
        envelopes = [json.loads(member) for member in members]
        # Envelopes whose target must still be spared stay parked, re-dated, without a
        # round trip through a worker (10,000 events waiting out an outage cost no CPU); so
        # do those a newer relay parked, for a worker that knows their format.
        due = [
            now + NEWER_PAUSE if is_newer(envelope) else self.hold(envelope, now)
            for envelope in envelopes
        ]
        self.schedule.redate({m: d for m, d in zip(members, due, strict=True) if d is not None})
        ready = [(m, e) for m, e, d in zip(members, envelopes, due, strict=True) if d is None]
        if ready:
            self.publish([e for _, e in ready])
            self.schedule.release([m for m, _ in ready])
        return len(members)


def spare_open_circuits() -> Callable[[dict[str, Any], float], float | None]:
    """A `hold` for the pump: events of a target whose circuit is open wait until it closes."""
    breaker = CircuitBreaker.from_settings()

    last_probe: dict[str, float] = {}

    def hold(envelope: dict[str, Any], now: float) -> float | None:
        event = envelope.get("event")
        target = event.get("target") if isinstance(event, dict) else None
        if not isinstance(target, str):
            return None
        until = breaker.open_until(target, now)
        if until is None:
            return None
        cooldown = breaker.policy.cooldown
        if until > now:  # open: come back after it, spread over one cool-down
            return until + random.uniform(0, cooldown)
        if now - last_probe.get(target, 0.0) >= cooldown:  # probing: let one event through
            last_probe[target] = now
            return None
        return now + random.uniform(0.5, 1.5) * cooldown

    return hold
