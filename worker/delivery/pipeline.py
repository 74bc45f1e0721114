"""Deliveries, start to finish: schema → route → claim → translate → send → classify → settle.

A Celery message carries a batch of envelopes (one or many). Redis is asked once per step for
the whole batch (claims, status order, done marks and counters go in pipelines), requests are
coalesced where the target's API allows, and each event is still settled on its own, per
message id: what was accepted is done, what may succeed later is parked in the retry schedule,
what cannot succeed becomes a dead letter carrying only its own message ids.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace

import redis

from tasks.classify import HttpResult, Retry
from tasks.envelope import Envelope
from tasks.events import Event
from tasks.outbound import NotDeliverable, OutboundRequest, Skip
from tasks.schemas import InvalidEvent, load_event
from tasks.targets import TARGET_KINDS
from worker.config import RelayConfig, Target
from worker.delivery.sending import Job, Sender
from worker.delivery.settle import Outcomes, Writes, field_of
from worker.delivery.settlement import Attempt, Settlement
from worker.observe import metrics
from worker.settings import get_settings
from worker.stores.breaker import BreakerPolicy, CircuitBreaker
from worker.stores.ledger import Admission, Entry
from worker.stores.ratelimit import RateLimiter

Routed = tuple[Envelope, Event, Target]


class Relay:
    """Processes batches of envelopes against one checked configuration and one Redis."""

    def __init__(self, config: RelayConfig, client: redis.Redis | None = None) -> None:
        settings = get_settings()
        self.config = config
        self.outcomes = Outcomes(client)
        self.admission = Admission(client)
        self.breaker = CircuitBreaker(
            BreakerPolicy(
                settings.breaker_threshold, settings.breaker_cooldown, settings.breaker_max_cooldown
            ),
            client,
        )
        self.limiter = RateLimiter(client)
        # Four HTTP threads per task thread: a bundle's requests are sent side by side (with
        # two, a 50 ms target ran at 0.85 of an at-once one in `make bench`; with four, 1.0).
        self.sender = Sender(self.breaker, self.limiter, 4 * settings.concurrency)

    def process_batch(self, envelopes: list[Envelope]) -> list[Settlement]:
        """Deliver, park or dead-letter each envelope; settlements in the same order."""
        batch = _Batch()
        settled = batch.settled
        routed: dict[int, Routed] = {}
        for i, envelope in enumerate(envelopes):
            outcome = self._route(envelope)
            if isinstance(outcome, Settlement):
                settled[i] = outcome
            else:
                routed[i] = outcome
        jobs = self._admit(routed, batch)
        ready = {i: job for i, job in jobs.items() if not self._held(i, job, batch)}
        deadline = time.monotonic() + get_settings().task_budget
        self.sender.send_all(list(ready.values()), deadline, self._delivered)
        for i, job in ready.items():
            if job.deferred and not job.tally.attempts:  # held back whole: no attempt spent
                job.envelope.attempts -= 1
                settled[i] = self.outcomes.defer(
                    job, job.defer_until, "rate limit reached", batch.writes
                )
                continue
            for part in job.deferred:  # held back after some of it went: retry the rest
                wait = Retry("rate limit reached", max(0.0, job.defer_until - time.time()))
                job.tally.add(Attempt(part, wait, HttpResult(None)))
            settled[i] = self.outcomes.settle(job, batch.writes)
        self.outcomes.flush(batch.writes)
        return [settled[i] for i in range(len(envelopes))]

    def _route(self, envelope: Envelope) -> Routed | Settlement:
        """Schema and routing: the event and its target, or a dead letter saying why not."""
        try:
            event = load_event(envelope.event)
        except InvalidEvent as exc:
            return self.outcomes.dead(
                envelope, "invalid", str(exc), field_of(envelope.event, "target")
            )
        target = self.config.targets.get(event.target)
        if target is None:
            known = ", ".join(sorted(self.config.targets)) or "none"
            message = f"unknown target {event.target!r} (configured targets: {known})"
            return self.outcomes.dead(envelope, "unroutable", message, event.target)
        return envelope, event, target

    def _admit(self, routed: dict[int, Routed], batch: _Batch) -> dict[int, Job]:
        """Translate, then claim each event_id and check status order (one round trip for the
        batch): copies are duplicates, statuses a target has no use for are skipped, and ones
        already overtaken are stale."""
        settled = batch.settled
        plans: dict[int, list[OutboundRequest] | Skip] = {}
        for i, (envelope, event, target) in routed.items():
            try:
                plans[i] = self._translate(event, target)
            except NotDeliverable as exc:
                message = f"{exc} (target {target.name!r} is a {target.kind} target)"
                settled[i] = self.outcomes.dead(envelope, "invalid", message, target.name)
        entries = [
            Entry(
                t.name,
                e.event_id,
                env.id,
                t.retry.max_age + 3600,
                "held" if env.claimed else "force" if env.replayed else "claim",
                None if isinstance(plans[i], Skip) else e,  # a skipped status orders nothing
            )
            for i in plans
            for env, e, t in [routed[i]]
        ]
        jobs: dict[int, Job] = {}
        for i, (taken, fresh) in zip(plans, self.admission.run(entries), strict=True):
            envelope, event, target = routed[i]
            plan = plans[i]
            if not taken:
                self.outcomes.count(target.name, "duplicate")
                settled[i] = Settlement(
                    "done", f"duplicate of event {event.event_id} (posted once)"
                )
                continue
            envelope.claimed = True
            if isinstance(plan, Skip):
                batch.writes.done.append((target.name, event.event_id, "skipped"))
                settled[i] = Settlement("done", f"skipped: {plan.reason}")
            elif not fresh:
                batch.writes.done.append((target.name, event.event_id, "stale"))
                settled[i] = Settlement("done", "stale: a newer status was already sent")
            elif len(fresh) < len(event.message_ids):
                event = replace(event, message_ids=tuple(fresh))
                narrowed = self._translate(event, target)
                assert not isinstance(narrowed, Skip)
                jobs[i] = Job(envelope.narrowed(fresh), event, target, narrowed)
            else:
                jobs[i] = Job(envelope, event, target, plan)
        return jobs

    def _translate(self, event: Event, target: Target) -> list[OutboundRequest] | Skip:
        return TARGET_KINDS[target.kind].translate(event, target.options)

    def _held(self, i: int, job: Job, batch: _Batch) -> bool:
        """Park the job, without spending an attempt, while its target's circuit is open."""
        now, target = time.time(), job.target
        blocked = self.breaker.blocked_until(target.name, now)
        if blocked is None:
            return False
        # Spread the wake-ups so the events do not all come back in one burst.
        due = blocked + random.uniform(0, self.breaker.policy.cooldown)
        why = "circuit open: the target keeps failing"
        batch.settled[i] = self.outcomes.defer(job, due, why, batch.writes)
        return True

    def _delivered(self, jobs: list[Job]) -> None:
        """Mark jobs delivered whole at once, before the rest of the batch is sent."""
        self.outcomes.flush(Writes([(j.target.name, j.event.event_id, "delivered") for j in jobs]))
        for job in jobs:
            job.marked = True
            metrics.observe_attempts(job.target.name, job.envelope.attempts)


@dataclass
class _Batch:
    """What one batch has come to so far: settlements by position, and the writes that go
    to Redis in one round trip at its end (done marks, parked retries, counts)."""

    settled: dict[int, Settlement] = field(default_factory=dict)
    writes: Writes = field(default_factory=Writes)
