"""The answer book: a done mark for every accepted request, written to Redis by a thread of its
own, so that reading an answer never waits on Redis and never fails because of it.

An HTTP thread that reads a 2xx only notes the mark here (memory, no Redis). The book's thread
writes what was noted, at most every MARK_EVERY seconds, in one round trip with the circuit
breaker's outcomes; while Redis does not answer (paused, restarting, a failover, no free
connection) it keeps the marks and tries again, for as long as the process lives. When a
bundle settles, it takes back its marks the thread has not started writing and writes them
with the rest of its settlement (one round trip, no mark written twice), and waits for those
the thread is writing. So what was answered is recorded before anything else happens to the
bundle: a rerun of the bundle, another worker taking it over after a kill -9, or a replay
finds it done. Only marks noted in the last MARK_EVERY (plus a round trip) before a kill -9
are lost, and those requests may be posted again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import redis

from worker.stores.breaker import CircuitBreaker
from worker.stores.ledger import Done, EventLedger

log = logging.getLogger("relay.answers")
MARK_EVERY = 0.02
"""Seconds a noted mark waits for company before the thread writes it: a round trip per
answer was a tenth of a worker's CPU, and a bundle settling within this time takes its marks
back and writes them itself."""
MAX_PAUSE = 1.0  # cap on the wait between tries while Redis does not answer

QUEUED, WRITING, WRITTEN = 0, 1, 2


@dataclass(eq=False, slots=True)
class _Noted:
    mark: Done
    at: float
    state: int = QUEUED


@dataclass(eq=False)
class Sheet:
    """One bundle's marks in the book."""

    noted: list[_Noted] = field(default_factory=list)


class AnswerBook:
    """Notes done marks of answered requests and writes them (see the module's docstring)."""

    def __init__(self, ledger: EventLedger, breaker: CircuitBreaker) -> None:
        self.ledger = ledger
        self.breaker = breaker
        self._cond = threading.Condition()
        self._queue: list[_Noted] = []
        self._thread: threading.Thread | None = None
        self._writing = False

    def note(self, sheet: Sheet, marks: list[Done]) -> None:
        """Record answered requests' marks, to be written soon. Never raises, never waits."""
        now = time.monotonic()
        noted = [_Noted(mark, now) for mark in marks]
        with self._cond:
            sheet.noted += noted
            wake = not self._queue  # else the thread is awake already, gathering
            self._queue += noted
            if wake:
                self._start()
                self._cond.notify()

    def heard(self, target: str, failed: bool) -> None:
        """The circuit breaker's view of an answer, written with the next marks (the thread
        is woken only when there is something to write: a failure, or a recovery)."""
        if failed:
            self.breaker.failure(target)
        elif not self.breaker.success(target):
            return
        with self._cond:
            self._start()
            self._cond.notify()

    def take_back(self, sheet: Sheet) -> list[Done]:
        """A settling bundle's marks not yet on their way to Redis (its caller writes them);
        returns once those on their way were written."""
        taken: list[_Noted] = []
        with self._cond:
            while True:  # a write that failed puts its marks back: take those too
                mine = [n for n in sheet.noted if n.state == QUEUED]
                if mine:
                    ids = {id(n) for n in mine}
                    self._queue = [n for n in self._queue if id(n) not in ids]
                    for noted in mine:
                        noted.state = WRITTEN
                    taken += mine
                if not any(n.state == WRITING for n in sheet.noted):
                    return [n.mark for n in taken]
                self._cond.wait()

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` s until every noted mark and outcome was written (a worker
        stopping, a bundle redone after a bug)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._writing or self.breaker.heard():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="relay-answers", daemon=True)
            self._thread.start()

    def _next(self) -> list[_Noted]:
        """The marks to write next, once the oldest waited MARK_EVERY (under the lock)."""
        while not self._queue and not self.breaker.heard():
            self._cond.wait()
        while self._queue:
            left = self._queue[0].at + MARK_EVERY - time.monotonic()
            if left <= 0:
                break
            self._cond.wait(left)
        batch, self._queue = self._queue, []
        for noted in batch:
            noted.state = WRITING
        self._writing = True
        return batch

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                batch = self._next()
            written = self._write(batch)
            with self._cond:
                self._writing = False
                for noted in batch:
                    noted.state = WRITTEN if written else QUEUED
                if not written:
                    self._queue = batch + self._queue
                self._cond.notify_all()
            failures = 0 if written else failures + 1
            if failures:
                time.sleep(min(MAX_PAUSE, 0.02 * 2**failures))

    def _write(self, batch: list[_Noted]) -> bool:
        """One round trip: the marks and the breaker's outcomes. False if Redis failed."""
        pipe = self.ledger.redis.pipeline(transaction=False)
        self.ledger.mark([n.mark for n in batch], pipe)
        read = self.breaker.write(pipe)
        try:
            read(pipe.execute())
            return True
        except redis.RedisError as exc:
            self.breaker.unwrite()
            log.warning("answers: cannot record %d mark(s) yet (%s)", len(batch), exc)
            return False
        except Exception as exc:  # a bug: keep the marks; a settling bundle takes them back
            self.breaker.unwrite()
            log.error("answers: cannot record marks (%s)", type(exc).__name__)
            return False
