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


@dataclass
class Writes:
    """A bundle's writes that may wait for its end, to go to Redis in one round trip."""

    done: list[tuple[str, str, str]] = field(default_factory=list)
    """(target, event_id, outcome): a done mark and a count each."""
    parked: list[tuple[Envelope, float, str, str]] = field(default_factory=list)
    """(envelope, due, target, outcome): into the retry schedule, and a count each."""
    forgotten: list[tuple[str, str]] = field(default_factory=list)
    """(target, event_id): claims to drop (nothing more will be sent for the event)."""


@dataclass
class BundleProgress:
    """What one bundle has come to so far: settlements by position in the bundle, and the
    writes that go to Redis in one round trip at its end."""

    settled: dict[int, Settlement] = field(default_factory=dict)
    writes: Writes = field(default_factory=Writes)


class Settler:
    """Records what became of events: done, parked for a retry, or a dead letter."""

    def __init__(self, client: redis.Redis | None = None) -> None:
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
            return self.dead(envelope, "exhausted", message, target.name)
        due = min(due, deadline)
        writes.parked.append((envelope, due, target.name, "deferred"))
        return Settlement("retry", f"deferred until {due - time.time():.1f}s from now: {why}", due)

    def flush(self, writes: Writes) -> None:
        """Done marks, parked retries, dropped claims and their counts in one round trip."""
        if not (writes.done or writes.parked or writes.forgotten):
            return
        pipe = self.counters.redis.pipeline(transaction=False)
        for target, event_id, _ in writes.done:
            self.events.done(target, event_id, pipe)
        for envelope, due, _, _ in writes.parked:
            self.schedule.park(envelope, due, pipe)
        for target, event_id in writes.forgotten:
            self.events.forget(target, event_id, pipe)
        counts = Counter((t, o) for t, _, o in writes.done)
        counts.update((t, o) for _, _, t, o in writes.parked)
        for (target, outcome), n in counts.items():
            self.count(target, outcome, pipe, n)
        pipe.execute()

    def settle(self, job: Job, writes: Writes) -> Settlement:
        """One sent job's end, per message id: delivered, parked, or dead letters for what was
        refused (the first two queued on `writes`)."""
        envelope, target, tally = job.envelope, job.target, job.tally
        parts = [f"delivered {len(tally.delivered)} message id(s)"] if tally.delivered else []
        rejected = self._reject(job)
        parts += [letter.summary for letter in rejected]
        parked = self._park(envelope.narrowed(tally.retry), target, tally, writes)
        if parked is not None:
            parts.append(parked.summary)
        gave_up = parked is not None and parked.state == "dead"
        if not tally.retry and not tally.rejected:
            if not job.marked:
                writes.done.append((target.name, job.event.event_id, "delivered"))
                metrics.observe_attempts(target.name, envelope.attempts)
        elif not tally.retry or gave_up:
            # Nothing will be sent for this event any more: a corrected resend may go through.
            writes.forgotten.append((target.name, job.event.event_id))
        due = parked.due if parked is not None and not gave_up else None
        self._log_attempts(job, due)
        if parked is not None:
            return Settlement(parked.state, "; ".join(parts), due)
        return Settlement("dead" if rejected else "done", "; ".join(parts))

    def _reject(self, job: Job) -> list[Settlement]:
        """A dead letter per refusal, each with the message ids that answer refused."""
        groups: dict[int, tuple[Attempt, list[str]]] = {}
        for mid, attempt in job.tally.rejected.items():
            groups.setdefault(id(attempt), (attempt, []))[1].append(mid)
        return [
            self.dead(
                job.envelope.narrowed(mids),
                "rejected",
                str(getattr(attempt.outcome, "reason", "")),
                job.target.name,
                attempt.result.status,
            )
            for attempt, mids in groups.values()
        ]

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
        self.count(target, f"dead:{reason}")
        sentry.report_dead_letter(letter)
        masked = mask_text(error)
        log.warning("dead letter id=%s reason=%s target=%s: %s", letter.id, reason, target, masked)
        return Settlement("dead", f"dead letter {letter.id} ({reason}): {error}")

    def count(
        self, target: str | None, outcome: str, pipe: redis.Redis | None = None, n: int = 1
    ) -> None:
        """Count an outcome in Redis (for `relay status`) and in this worker's metrics."""
        self.counters.incr(target, outcome, n, pipe=pipe)
        metrics.count_outcome(target, outcome, n)


def field_of(event: Any, name: str) -> str | None:
    """A string field of a raw event, if it is an object that has one."""
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
