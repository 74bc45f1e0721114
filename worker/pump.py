"""The retry pump: a thread in every worker that re-queues parked retries when they fall due."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from worker.retryset import RetrySchedule

log = logging.getLogger("relay.pump")
BATCH = 500


class RetryPump:
    """Moves due envelopes from the retry schedule back onto the delivery queue."""

    def __init__(
        self,
        schedule: RetrySchedule,
        publish: Callable[[list[dict[str, Any]]], object],
        interval: float,
        lease: float,
    ) -> None:
        self.schedule = schedule
        self.publish = publish
        self.interval = interval
        self.lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-retry-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def pump_once(self, now: float | None = None) -> int:
        """Re-queue what is due; return how many envelopes moved."""
        members = self.schedule.claim_due(time.time() if now is None else now, BATCH, self.lease)
        if not members:
            return 0
        self.publish([json.loads(member) for member in members])
        self.schedule.release(members)
        return len(members)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.pump_once()
            except redis.RedisError as exc:
                log.warning("retry pump: Redis unavailable (%s); trying again", exc)
                moved = 0
            except Exception:  # keep pumping: a stopped pump would strand every parked retry
                log.exception("retry pump failed; trying again")
                moved = 0
            if moved < BATCH:
                self._stop.wait(self.interval)
