"""What becomes of events: done marks and counts, the retry schedule, dead letters.

Everything here writes to Redis; `worker.delivery.pipeline` decides, per event, which it is.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from tasks.backoff import next_retry_delay
from tasks.classify import Retry
from tasks.envelope import Envelope
from worker.config import Target
from worker.delivery.sending import Job
from worker.delivery.settlement import Settlement, Tally
from worker.observe import logs, metrics
from worker.observe import sentry as reporting
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore, Reason
from worker.stores.ledger import EventLedger
from worker.stores.retries import RetrySchedule

log = logging.getLogger("relay.outcomes")


@dataclass
class Writes:
    """A batch's writes that may wait for its end, to go to Redis in one round trip."""

    done: list[tuple[str, str, str]] = field(default_factory=list)
    """(target, event_id, outcome): a done mark and a count each."""
    parked: list[tuple[Envelope, float, str, str]] = field(default_factory=list)
    """(envelope, due, target, outcome): into the retry schedule, and a count each."""
    forgotten: list[tuple[str, str]] = field(default_factory=list)
    """(target, event_id): claims to drop (nothing more will be sent for the event)."""


class Outcomes:
    """Records outcomes in the stores every worker shares."""

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
        """One sent job's end, per message id: delivered, parked or dead letters for what was
        refused (the first two queued on `writes`)."""
        envelope, target, tally = job.envelope, job.target, job.tally
        parts: list[str] = []
        if tally.delivered:
            parts.append(f"delivered {len(tally.delivered)} message id(s)")
        state: Literal["done", "retry", "dead"] = "done"
        due: float | None = None
        groups: dict[int, tuple[Any, list[str]]] = {}
        for mid, attempt in tally.rejected.items():
            groups.setdefault(id(attempt), (attempt, []))[1].append(mid)
        for attempt, mids in groups.values():
            reason = str(getattr(attempt.outcome, "reason", ""))
            dead = self.dead(
                envelope.narrowed(mids), "rejected", reason, target.name, attempt.result.status
            )
            parts.append(dead.summary)
            state = "dead"
        if tally.retry:
            parked = self._park(envelope.narrowed(tally.retry), target, tally, writes)
            parts.append(parked.summary)
            state, due = ("retry", parked.due) if parked.state == "retry" else ("dead", None)
        if not tally.retry and not tally.rejected:
            if not job.marked:
                writes.done.append((target.name, job.event.event_id, "delivered"))
                metrics.observe_attempts(target.name, envelope.attempts)
        elif not tally.retry or state == "dead":
            # Nothing will be sent for this event any more: a corrected resend may go through.
            writes.forgotten.append((target.name, job.event.event_id))
        for attempt in tally.attempts:
            logs.attempt(
                job.event.event_id,
                target.name,
                envelope.attempts,
                attempt.request.endpoint,
                attempt.result,
                type(attempt.outcome).__name__.lower(),
                due if isinstance(attempt.outcome, Retry) else None,
            )
        return Settlement(state, "; ".join(parts), due)

    def _park(self, envelope: Envelope, target: Target, tally: Tally, writes: Writes) -> Settlement:
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

    def dead(
        self,
        envelope: Envelope,
        reason: Reason,
        error: str,
        target: str | None,
        status: int | None = None,
    ) -> Settlement:
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
        reporting.report_dead_letter(letter)
        masked = reporting.mask_text(error)
        log.warning("dead letter id=%s reason=%s target=%s: %s", letter.id, reason, target, masked)
        return Settlement("dead", f"dead letter {letter.id} ({reason}): {error}")

    def count(
        self, target: str | None, outcome: str, pipe: redis.Redis | None = None, n: int = 1
    ) -> None:
        self.counters.incr(target, outcome, n, pipe=pipe)
        metrics.count_outcome(target, outcome, n)


def field_of(event: Any, name: str) -> str | None:
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
