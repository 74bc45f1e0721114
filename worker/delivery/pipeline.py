"""Deliveries, start to finish: schema → route → admit → send → classify → settle.

A Celery message carries a bundle of envelopes (one or many). Redis is asked once per step for
the whole bundle (claims, status order, done marks and counters go in pipelines), requests are
coalesced where the target's API allows, and each event is still settled on its own, per
message id: what was accepted is done, what may succeed later is parked in the retry schedule,
what cannot succeed becomes a dead letter carrying only its own message ids.

Redis trouble can only make a bundle run again before anything was sent (admission raises
redis.RedisError); once requests went out, their answers are in the answer book and the
bundle's settlement is tried again until Redis answers. A bundle runs on copies of its
envelopes, so a rerun starts from what it was given: first attempts, coalesced again.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

import redis

from tasks.classify import HttpResult, RetryLater
from tasks.envelope import Envelope
from tasks.events import Event
from tasks.schemas import InvalidEvent, load_event, load_events
from worker.config import RelayConfig
from worker.delivery.admission import Admitter, Routed
from worker.delivery.answers import AnswerBook, Sheet
from worker.delivery.sending import Job, Sender
from worker.delivery.settle import BundleProgress, Settler, Writes, field_of
from worker.delivery.settlement import Attempt, Settlement
from worker.settings import get_settings
from worker.stores.breaker import CircuitBreaker
from worker.stores.ledger import EventLedger
from worker.stores.ratelimit import RateLimiter


class Pipeline:
    """Processes bundles of envelopes against one checked configuration and one Redis."""

    def __init__(self, config: RelayConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.settler = Settler(client, frozenset(config.targets))
        ledger = EventLedger(client)
        self.admitter = Admitter(ledger, self.settler)
        self.breaker = CircuitBreaker.from_settings(client)
        self.book = AnswerBook(ledger, self.breaker)
        self.sender = Sender(self.book, RateLimiter(client))

    def process_bundle(
        self, envelopes: list[Envelope], settled: set[str] | None = None
    ) -> list[Settlement]:
        """Deliver, park or dead-letter each envelope; settlements in the same order. The ids
        of the envelopes are added to `settled` once their outcomes were recorded."""
        envelopes = [_copy(e) for e in envelopes]
        progress = BundleProgress()
        routed: dict[int, Routed] = {}
        for i, (envelope, loaded) in enumerate(zip(envelopes, _load_all(envelopes), strict=True)):
            outcome = self._route(envelope, loaded, progress.writes)
            if isinstance(outcome, Settlement):
                progress.put(i, outcome)
            else:
                routed[i] = outcome
        jobs = self.admitter.admit(routed, progress)
        ready = {i: job for i, job in jobs.items() if not self._park_if_open(i, job, progress)}
        deadline = time.monotonic() + get_settings().task_budget
        sheet = Sheet()
        self.sender.send_all(list(ready.values()), deadline, sheet)
        for i, job in ready.items():
            progress.put(i, self._settle_or_give_up(job, progress.writes))
        self._flush(progress.writes, sheet)
        if settled is not None:
            settled.update(e.id for e in envelopes)
        return [progress.settled[i] for i in range(len(envelopes))]

    def _flush(self, writes: Writes, sheet: Sheet) -> None:
        """The bundle's writes with the answers' marks the book has not written yet."""
        marks = self.book.take_back(sheet)
        writes.marks[:0] = marks
        try:
            self.settler.flush(writes)
        except BaseException:  # given back: an answer read is recorded whatever comes next
            self.book.note(sheet, marks)
            raise

    def _settle_or_give_up(self, job: Job, writes: Writes) -> Settlement:
        try:
            return self._settle_sent(job, writes)
        except Exception as exc:  # a bug must cost this event, not the bundle
            why = f"internal error settling the event ({type(exc).__name__})"
            return self.settler.dead(job.envelope, "rejected", why, job.target.name, writes)

    def _route(
        self, envelope: Envelope, loaded: Event | InvalidEvent | None, writes: Writes
    ) -> Routed | Settlement:
        """Schema and routing: the event and its target, or a dead letter saying why not.
        `loaded` is what the bundle's schema pass made of the event (None: load it here)."""
        target_name = field_of(envelope.event, "target")
        try:
            event = load_event(envelope.event) if loaded is None else loaded
            if isinstance(event, InvalidEvent):
                raise event
        except InvalidEvent as exc:
            return self.settler.dead(
                envelope, "invalid", str(exc), target_name, writes, claims=False
            )
        except Exception as exc:  # a bug must cost this event, not the bundle
            why = f"internal error validating the event ({type(exc).__name__})"
            return self.settler.dead(envelope, "invalid", why, target_name, writes, claims=False)
        target = self.config.targets.get(event.target)
        if target is None:
            known = ", ".join(sorted(self.config.targets)) or "none"
            message = f"unknown target {event.target!r} (configured targets: {known})"
            return self.settler.dead(
                envelope, "unroutable", message, event.target, writes, claims=False
            )
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
        progress.put(i, self.settler.defer(job, due, why, progress.writes))
        return True

    def _settle_sent(self, job: Job, writes: Writes) -> Settlement:
        """A sent job's settlement. Requests held back unsent (a rate limit, the time budget)
        cost no attempt when nothing sent failed: what was delivered is done and the rest is
        deferred; after a failure they are retried with the rest."""
        tally = job.tally
        if job.deferred and not tally.retry and not tally.rejected:
            job.envelope.attempts -= 1
            held = [mid for part in job.deferred for mid in part.message_ids]
            rest = replace(job, envelope=job.envelope.narrowed(held))
            return self.settler.defer(rest, job.defer_until, job.defer_why, writes)
        for part in job.deferred:  # held back after something failed: retry with the rest
            wait = RetryLater(job.defer_why, max(0.0, job.defer_until - time.time()))
            tally.add(Attempt(part, wait, HttpResult(None)))
        return self.settler.settle(job, writes)


def _load_all(envelopes: list[Envelope]) -> list[Event | InvalidEvent | None]:
    """The bundle's events through the schema in one pass; on a bug, None for each (each is
    then loaded alone, so that only the event that causes it pays)."""
    try:
        return list(load_events([e.event for e in envelopes]))
    except Exception:
        return [None] * len(envelopes)


def _copy(envelope: Envelope) -> Envelope:
    """A copy a bundle's run may change (attempts, history) without touching the original."""
    return Envelope(
        envelope.event, envelope.attempts, envelope.first_seen, envelope.id, list(envelope.history)
    )
