"""Settling events in the stores every worker shares: done marks and counts, the retry
schedule, dead letters. `worker.delivery.pipeline` decides, per event, which it is.
"""

from __future__ import annotations

import logging
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
from worker.delivery.settlement import Attempt, Settlement, Tally
from worker.observe import logs, metrics, sentry
from worker.observe.masking import mask_text
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore, Reason
from worker.stores.ledger import EventLedger
from worker.stores.retries import RetrySchedule

log = logging.getLogger("relay.outcomes")
UNKNOWN = "(unknown)"
"""The label of every target name that is not configured."""


@dataclass(frozen=True, slots=True)
class Mark:
    """Message ids of an event that need no more sending: done marks, and maybe a count."""

    target: str
    event_id: str
    mids: tuple[str, ...]
    outcome: str | None
    """What the event counts as (delivered, skipped, stale); None for a part of an event
    whose other ids are still on their way (the event is counted when it ends)."""
    order: tuple[int, str] | None = None
    """(occurred_ms, status) of a delivered status: it becomes the newest for its ids."""


@dataclass
class Writes:
    """A bundle's writes that may wait for its end, to go to Redis in one round trip."""

    done: list[Mark] = field(default_factory=list)
    parked: list[tuple[Envelope, float, str, str]] = field(default_factory=list)
    """(envelope, due, target, outcome): into the retry schedule, and a count each."""
    forgotten: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    """(target, event_id, message ids): claims to drop (nothing more will be sent for them)."""


@dataclass
class BundleProgress:
    """What one bundle has come to so far: settlements by position in the bundle, and the
    writes that go to Redis in one round trip at its end."""

    settled: dict[int, Settlement] = field(default_factory=dict)
    writes: Writes = field(default_factory=Writes)


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
        """Park the job until `due` without spending an attempt (it was not sent)."""
        envelope, target = job.envelope, job.target
        deadline = envelope.first_seen + target.retry.max_age
        if time.time() >= deadline:
            message = f"gave up after {envelope.attempts} attempt(s): max_age passed ({why})"
            writes.forgotten.append(_claims_of(envelope, target))
            return self.dead(envelope, "exhausted", message, target.name)
        due = min(due, deadline)
        writes.parked.append((envelope, due, target.name, "deferred"))
        return Settlement("retry", f"deferred until {due - time.time():.1f}s from now: {why}", due)

    def flush(self, writes: Writes) -> None:
        """Done marks, parked retries, dropped claims and their counts in one round trip."""
        if not (writes.done or writes.parked or writes.forgotten):
            return
        pipe = self.counters.redis.pipeline(transaction=False)
        for mark in writes.done:
            self.events.mark(mark.target, mark.event_id, mark.mids, mark.order, pipe)
        for envelope, due, _, _ in writes.parked:
            self.schedule.park(envelope, due, pipe)
        for target, event_id, mids in writes.forgotten:
            self.events.forget(target, event_id, mids, pipe)
        counts = Counter((m.target, m.outcome) for m in writes.done if m.outcome)
        counts.update((t, o) for _, _, t, o in writes.parked)
        for (target, outcome), n in counts.items():
            self.count(target, outcome, pipe, n)
        pipe.execute()

    def settle(self, job: Job, writes: Writes) -> Settlement:
        """One sent job's end, per message id: delivered, parked, or dead letters for what was
        refused (done marks and parking queued on `writes`). A dead letter outranks a retry in
        the settlement's state, a retry outranks done."""
        envelope, target, tally = job.envelope, job.target, job.tally
        parts = [f"delivered {len(tally.delivered)} message id(s)"] if tally.delivered else []
        whole = not tally.retry and not tally.rejected
        if tally.delivered and not job.marked:
            writes.done.append(delivered_mark(job, tally.delivered, counted=whole))
            if whole:
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
            writes.forgotten.append((job.target.name, job.event.event_id, tuple(mids)))
            reason = str(getattr(attempt.outcome, "reason", ""))
            status = attempt.result.status
            letters.append(
                self.dead(job.envelope.narrowed(mids), "rejected", reason, job.target.name, status)
            )
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
            writes.forgotten.append(_claims_of(envelope, target))
            return self.dead(
                envelope, "exhausted", message, target.name, tally.last_retry.result.status
            )
        writes.parked.append((envelope, now + delay, target.name, "retried"))
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
        status: int | None = None,
    ) -> Settlement:
        """Store the envelope's event as a dead letter, count it and report it."""
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
        )
        self.dead_letters.add(letter)
        label = self.label(target)
        self.count(label, f"dead:{reason}")
        sentry.report_dead_letter(letter, label)
        masked = mask_text(error)
        log.warning("dead letter id=%s reason=%s target=%s: %s", letter.id, reason, label, masked)
        return Settlement("dead", f"dead letter {letter.id} ({reason}): {error}")

    def label(self, target: str | None) -> str | None:
        """`target` if it is a configured one (or None), else UNKNOWN."""
        return target if target is None or target in self.known else UNKNOWN

    def count(
        self, target: str | None, outcome: str, pipe: redis.Redis | None = None, n: int = 1
    ) -> None:
        """Count an outcome in Redis (for `relay status`) and in this worker's metrics."""
        self.counters.incr(target, outcome, n, pipe=pipe)
        metrics.count_outcome(target, outcome, n)


def delivered_mark(job: Job, mids: list[str], counted: bool = True) -> Mark:
    """The done mark of a job's delivered message ids; it raises their newest status."""
    event = job.event
    outcome = "delivered" if counted else None
    order = (event.occurred_ms, event.status)
    return Mark(job.target.name, event.event_id, tuple(mids), outcome, order)


def _claims_of(envelope: Envelope, target: Target) -> tuple[str, str, tuple[str, ...]]:
    """The claims an envelope holds: its target, event id and message ids."""
    event = envelope.event
    return target.name, str(field_of(event, "event_id")), tuple(event.get("message_ids", ()))


def field_of(event: Any, name: str) -> str | None:
    """A string field of a raw event, if it is an object that has one."""
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
