"""Settling events in the stores every worker shares: done marks and counts, the retry
schedule, dead letters. `worker.delivery.pipeline` decides, per event, which it is.

Nothing here writes to Redis until `flush`: a bundle's settlement is a list of writes sent in
one round trip at its end, tried again until Redis answers (every write in it may be sent
twice without harm but the counts), so that Redis trouble after the requests went out never
makes the bundle run again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from tasks.backoff import next_retry_delay
from tasks.classify import RetryLater
from tasks.envelope import Envelope
from worker.config import Target
from worker.delivery.sending import Job
from worker.delivery.settlement import Attempt, Settlement, Tally, merge
from worker.observe import logs, metrics, sentry
from worker.observe.masking import mask_text
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore, Reason
from worker.stores.ledger import Done, EventLedger, Mode
from worker.stores.retries import RetrySchedule

log = logging.getLogger("relay.outcomes")
UNKNOWN = "(unknown)"
"""The label of every target name that is not configured."""
MAX_PAUSE = 2.0  # cap on the wait between tries of a flush while Redis does not answer
STOPPING = threading.Event()
"""Set when the worker stops: a flush Redis keeps refusing is then given up after a few tries
(the bundle's items stay in Redis for another worker) instead of tried forever."""


@dataclass
class Writes:
    """A bundle's writes, sent to Redis in one round trip at its end."""

    marks: list[Done] = field(default_factory=list)
    """Done marks, released reservations, forgotten claims."""
    counts: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    parked: list[tuple[Envelope, float]] = field(default_factory=list)
    letters: list[tuple[DeadLetter, str | None]] = field(default_factory=list)
    """Dead letters, each with its target's label (reported once they are stored)."""

    def count(self, target: str | None, outcome: str, n: int = 1) -> None:
        self.counts[(target, outcome)] += n

    def claims(self, envelope: Envelope, target: str, mids: Any, mode: Mode) -> None:
        """Release (`release`) or drop (`forget`) what `envelope` holds of `mids`."""
        event_id = field_of(envelope.event, "event_id")
        ids = tuple(m for m in mids if isinstance(m, str)) if isinstance(mids, list | tuple) else ()
        if event_id is not None and ids:
            self.marks.append(Done(target, event_id, ids, owner=envelope.id, mode=mode))


@dataclass
class BundleProgress:
    """What one bundle has come to so far: settlements by position in the bundle, and the
    writes that go to Redis in one round trip at its end."""

    settled: dict[int, Settlement] = field(default_factory=dict)
    writes: Writes = field(default_factory=Writes)

    def put(self, i: int, settlement: Settlement) -> None:
        """Record event `i`'s settlement; a second one (part of the event was held back at
        admission, the rest was sent) is merged with the first."""
        before = self.settled.get(i)
        self.settled[i] = settlement if before is None else merge([before, settlement])


class Settler:
    """Records what became of events: done, parked for a retry, or a dead letter."""

    def __init__(
        self, client: redis.Redis | None = None, known: frozenset[str] = frozenset()
    ) -> None:
        self.known = known
        """Configured target names: only these become labels (counters, metrics, Sentry);
        any other name an event gives counts under UNKNOWN, so a producer cannot make them
        grow without bound."""
        self.dead_letters = DeadLetterStore(client)
        self.schedule = RetrySchedule(client)
        self.counters = Counters(client)
        self.events = EventLedger(client)

    def defer(self, job: Job, due: float, why: str, writes: Writes) -> Settlement:
        """Park the job until `due` without spending an attempt (it was not sent), releasing
        the message ids it reserved."""
        envelope, target = job.envelope, job.target
        deadline = envelope.first_seen + target.retry.max_age
        if time.time() >= deadline:
            message = f"gave up after {envelope.attempts} attempt(s): max_age passed ({why})"
            return self.dead(envelope, "exhausted", message, target.name, writes, claims=True)
        due = min(due, deadline)
        envelope.note_deferral(why)
        writes.parked.append((envelope, due))
        writes.count(target.name, "deferred")
        writes.claims(envelope, target.name, list(job.event.message_ids), "release")
        return Settlement("retry", f"deferred until {due - time.time():.1f}s from now: {why}", due)

    def flush(self, writes: Writes) -> None:
        """Every write of a bundle in one round trip, tried again while Redis does not answer
        (given up, raising, only once the worker stops); then dead letters are reported."""
        if not (writes.marks or writes.parked or writes.letters or writes.counts):
            return
        failures = 0
        while True:
            try:
                self._write(writes)
                break
            except redis.RedisError as exc:
                failures += 1
                if STOPPING.is_set() and failures > 3:
                    raise
                log.warning("cannot record a bundle's outcomes yet (%s); trying again", exc)
                time.sleep(min(MAX_PAUSE, 0.05 * 2**failures))
        for (target, outcome), n in writes.counts.items():
            metrics.count_outcome(target, outcome, n)
        for letter, label in writes.letters:
            sentry.report_dead_letter(letter, label)
            masked = mask_text(letter.error)
            log.warning(
                "dead letter id=%s reason=%s target=%s: %s", letter.id, letter.reason, label, masked
            )

    def _write(self, writes: Writes) -> None:
        pipe = self.counters.redis.pipeline(transaction=False)
        self.events.mark(writes.marks, pipe)
        for envelope, due in writes.parked:
            self.schedule.park(envelope, due, pipe)
        for letter, _ in writes.letters:
            self.dead_letters.add(letter, pipe)
        for (target, outcome), n in writes.counts.items():
            self.counters.incr(target, outcome, n, pipe=pipe)
        pipe.execute()

    def settle(self, job: Job, writes: Writes) -> Settlement:
        """One sent job's end, per message id: delivered, parked, or dead letters for what was
        refused (queued on `writes`; the done marks of what was delivered are the answer
        book's). A dead letter outranks a retry in the settlement's state, a retry outranks
        done."""
        envelope, target, tally = job.envelope, job.target, job.tally
        parts = [f"delivered {len(tally.delivered)} message id(s)"] if tally.delivered else []
        if tally.delivered and not tally.retry and not tally.rejected:
            writes.count(target.name, "delivered")
            metrics.observe_attempts(target.name, envelope.attempts)
        rejected = self._reject(job, writes)
        parts += [letter.summary for letter in rejected]
        parked = self._park(envelope.narrowed(tally.retry), target, tally, writes)
        if parked is not None:
            parts.append(parked.summary)
        due = parked.due if parked is not None and parked.state == "retry" else None
        self._log_attempts(job, due)
        if rejected or (parked is not None and parked.state == "dead"):
            return Settlement("dead", "; ".join(parts))
        return Settlement("retry" if due is not None else "done", "; ".join(parts), due)

    def _reject(self, job: Job, writes: Writes) -> list[Settlement]:
        """A dead letter per refusal, each with the message ids that answer refused; their
        claims are dropped, so a replay can send them."""
        groups: dict[int, tuple[Attempt, list[str]]] = {}
        for mid, attempt in job.tally.rejected.items():
            groups.setdefault(id(attempt), (attempt, []))[1].append(mid)
        letters = []
        for attempt, mids in groups.values():
            reason = str(getattr(attempt.outcome, "reason", ""))
            status = attempt.result.status
            narrowed = job.envelope.narrowed(mids)
            letter = self.dead(narrowed, "rejected", reason, job.target.name, writes, status)
            letters.append(letter)
        return letters

    def _park(
        self, envelope: Envelope, target: Target, tally: Tally, writes: Writes
    ) -> Settlement | None:
        """Park the message ids that may succeed later, or give them up (exhausted)."""
        if not tally.retry:
            return None
        assert tally.last_retry is not None
        reason = str(getattr(tally.last_retry.outcome, "reason", ""))
        now = time.time()
        delay = next_retry_delay(
            target.retry, envelope.attempts, envelope.first_seen, now, tally.retry_after
        )
        if delay is None:
            message = (
                f"gave up after {envelope.attempts} attempt(s) over "
                f"{now - envelope.first_seen:.0f}s; last: {reason}"
            )
            status = tally.last_retry.result.status
            return self.dead(envelope, "exhausted", message, target.name, writes, status)
        writes.parked.append((envelope, now + delay))
        writes.count(target.name, "retried")
        writes.claims(envelope, target.name, tally.retry, "release")
        summary = f"retry {len(tally.retry)} message id(s) in {delay:.1f}s ({reason})"
        return Settlement("retry", summary, now + delay)

    def _log_attempts(self, job: Job, due: float | None) -> None:
        for attempt in job.tally.attempts:
            logs.attempt(
                job.event.event_id,
                job.target.name,
                job.envelope.attempts,
                attempt.request.endpoint,
                attempt.result,
                attempt.outcome.word,
                due if isinstance(attempt.outcome, RetryLater) else None,
            )

    def dead(
        self,
        envelope: Envelope,
        reason: Reason,
        error: str,
        target: str | None,
        writes: Writes,
        status: int | None = None,
        claims: bool = True,
    ) -> Settlement:
        """Queue the envelope's event as a dead letter and count it; with `claims`, what the
        envelope holds of its message ids is dropped (a replay must find them free)."""
        letter = DeadLetter(
            reason=reason,
            error=error,
            event=envelope.event,
            attempts=envelope.attempts,
            event_id=field_of(envelope.event, "event_id"),
            target=target,
            status_code=status,
            first_seen=envelope.first_seen,
            history=envelope.history,
            envelope=envelope.id,
        )
        label = self.label(target)
        writes.letters.append((letter, label))
        writes.count(label, f"dead:{reason}")
        if claims and target is not None and isinstance(envelope.event, dict):
            writes.claims(envelope, target, envelope.event.get("message_ids"), "forget")
        return Settlement("dead", f"dead letter {letter.id} ({reason}): {error}")

    def label(self, target: str | None) -> str | None:
        """`target` if it is a configured one (or None), else UNKNOWN."""
        return target if target is None or target in self.known else UNKNOWN


def field_of(event: Any, name: str) -> str | None:
    """A string field of a raw event, if it is an object that has one."""
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
