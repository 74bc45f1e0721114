"""Deliveries, start to finish: schema → route → admit → send → classify → settle.

A Celery message carries a bundle of envelopes (one or many). Redis is asked once per step for
the whole bundle (claims, status order, done marks and counters go in pipelines), requests are
coalesced where the target's API allows, and each event is still settled on its own, per
message id: what was accepted is done, what may succeed later is parked in the retry schedule,
what cannot succeed becomes a dead letter carrying only its own message ids.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

import redis

from tasks.classify import HttpResult, RetryLater
from tasks.envelope import Envelope
from tasks.schemas import InvalidEvent, load_event
from worker.config import RelayConfig
from worker.delivery.admission import Admitter, Routed
from worker.delivery.sending import Job, Sender
from worker.delivery.settle import BundleProgress, Settler, Writes, delivered_mark, field_of
from worker.delivery.settlement import Attempt, Settlement
from worker.observe import metrics
from worker.settings import get_settings
from worker.stores.breaker import CircuitBreaker
from worker.stores.ledger import EventLedger
from worker.stores.ratelimit import RateLimiter


class Pipeline:
    """Processes bundles of envelopes against one checked configuration and one Redis."""

    def __init__(self, config: RelayConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.settler = Settler(client, frozenset(config.targets))
        self.admitter = Admitter(EventLedger(client), self.settler)
        self.breaker = CircuitBreaker.from_settings(client)
        # Four HTTP threads per task thread: a bundle's requests are sent side by side (with
        # two, a 50 ms target ran at 0.85 of an at-once one in `make bench`; with four, 1.0).
        threads = 4 * get_settings().concurrency
        self.sender = Sender(self.breaker, RateLimiter(client), threads)

    def process_bundle(self, envelopes: list[Envelope]) -> list[Settlement]:
        """Deliver, park or dead-letter each envelope; settlements in the same order."""
        progress = BundleProgress()
        routed: dict[int, Routed] = {}
        for i, envelope in enumerate(envelopes):
            outcome = self._route(envelope)
            if isinstance(outcome, Settlement):
                progress.settled[i] = outcome
            else:
                routed[i] = outcome
        jobs = self.admitter.admit(routed, progress)
        ready = {i: job for i, job in jobs.items() if not self._park_if_open(i, job, progress)}
        deadline = time.monotonic() + get_settings().task_budget
        self.sender.send_all(list(ready.values()), deadline, self._mark_delivered)
        for i, job in ready.items():
            try:
                progress.settled[i] = self._settle_sent(job, progress.writes)
            except redis.RedisError:
                raise
            except Exception as exc:  # a bug must cost this event, not the bundle
                why = f"internal error settling the event ({type(exc).__name__})"
                progress.settled[i] = self.settler.dead(
                    job.envelope, "rejected", why, job.target.name
                )
        self.settler.flush(progress.writes)
        return [progress.settled[i] for i in range(len(envelopes))]

    def _route(self, envelope: Envelope) -> Routed | Settlement:
        """Schema and routing: the event and its target, or a dead letter saying why not."""
        try:
            event = load_event(envelope.event)
        except InvalidEvent as exc:
            return self.settler.dead(
                envelope, "invalid", str(exc), field_of(envelope.event, "target")
            )
        except Exception as exc:  # a bug must cost this event, not the bundle
            why = f"internal error validating the event ({type(exc).__name__})"
            return self.settler.dead(envelope, "invalid", why, field_of(envelope.event, "target"))
        target = self.config.targets.get(event.target)
        if target is None:
            known = ", ".join(sorted(self.config.targets)) or "none"
            message = f"unknown target {event.target!r} (configured targets: {known})"
            return self.settler.dead(envelope, "unroutable", message, event.target)
        return envelope, event, target

    def _park_if_open(self, i: int, job: Job, progress: BundleProgress) -> bool:
        """Park the job, without spending an attempt, if its target's circuit is open; say
        whether it was parked."""
        now = time.time()
        blocked = self.breaker.acquire(job.target.name, now)
        if blocked is None:
            return False
        # Spread the wake-ups so the events do not all come back in one burst.
        due = blocked + random.uniform(0, self.breaker.policy.cooldown)
        why = "circuit open: the target keeps failing"
        progress.settled[i] = self.settler.defer(job, due, why, progress.writes)
        return True

    def _settle_sent(self, job: Job, writes: Writes) -> Settlement:
        """A sent job's settlement. Requests held back unsent (a rate limit, the time budget)
        cost no attempt when nothing sent failed: what was delivered is marked done and the
        rest is deferred; after a failure they are retried with the rest."""
        tally = job.tally
        if job.deferred and not tally.retry and not tally.rejected:
            job.envelope.attempts -= 1
            if tally.delivered:
                writes.done.append(delivered_mark(job, tally.delivered, counted=False))
            held = [mid for part in job.deferred for mid in part.message_ids]
            rest = replace(job, envelope=job.envelope.narrowed(held))
            return self.settler.defer(rest, job.defer_until, job.defer_why, writes)
        for part in job.deferred:  # held back after something failed: retry with the rest
            wait = RetryLater(job.defer_why, max(0.0, job.defer_until - time.time()))
            tally.add(Attempt(part, wait, HttpResult(None)))
        return self.settler.settle(job, writes)

    def _mark_delivered(self, jobs: list[Job]) -> None:
        """Mark jobs delivered whole at once, before the rest of the bundle is sent."""
        self.settler.flush(Writes([delivered_mark(j, list(j.event.message_ids)) for j in jobs]))
        for job in jobs:
            job.marked = True
            metrics.observe_attempts(job.target.name, job.envelope.attempts)
