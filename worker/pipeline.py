"""One delivery, start to finish: schema → route → translate → send → classify → settle.

Settling is per message id: what was accepted is done, what may succeed later is parked in the
retry schedule, what cannot succeed becomes a dead letter carrying only its own message ids.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import replace
from typing import Any, Literal

import redis

from tasks.backoff import next_retry_delay
from tasks.classify import HttpResult, Retry, classify
from tasks.events import Event
from tasks.outbound import NotDeliverable, OutboundRequest, Skip
from tasks.schemas import InvalidEvent, load_event
from tasks.targets import TARGET_KINDS
from worker import logs, metrics, reporting
from worker.auth import Authenticator, AuthError, make_authenticator
from worker.breaker import BreakerPolicy, CircuitBreaker
from worker.config import RelayConfig, Target
from worker.counters import Counters
from worker.deadletters import DeadLetter, DeadLetterStore, Reason
from worker.envelope import Envelope
from worker.ledger import EventLedger, StatusLedger
from worker.ratelimit import RateLimiter
from worker.retryset import RetrySchedule
from worker.settings import get_settings
from worker.settlement import Attempt, Settlement, Tally
from worker.transport import send

log = logging.getLogger("relay.pipeline")
_BUDGET_SPENT = "not sent yet: this task's time budget (RELAY_TASK_BUDGET) ran out"


class Relay:
    """Processes envelopes against one checked configuration and one Redis."""

    def __init__(self, config: RelayConfig, client: redis.Redis | None = None) -> None:
        settings = get_settings()
        self.config = config
        self.dead_letters = DeadLetterStore(client)
        self.schedule = RetrySchedule(client)
        self.counters = Counters(client)
        self.events = EventLedger(client)
        self.statuses = StatusLedger(client)
        self.breaker = CircuitBreaker(
            BreakerPolicy(
                settings.breaker_threshold, settings.breaker_cooldown, settings.breaker_max_cooldown
            ),
            client,
        )
        self.limiter = RateLimiter(client)
        self._auth: dict[str, Authenticator] = {}

    def process(self, envelope: Envelope) -> Settlement:
        """Deliver, park or dead-letter one envelope."""
        admitted = self._admit(envelope)
        if isinstance(admitted, Settlement):
            return admitted
        event, target = admitted
        try:
            prepared = self._prepare(envelope, event, target)
        except NotDeliverable as exc:
            message = f"{exc} (target {target.name!r} is a {target.kind} target)"
            return self._dead(envelope, "invalid", message, target.name)
        if isinstance(prepared, Settlement):
            return prepared
        envelope, event, plan = prepared
        held = self._hold(envelope, target, len(plan))
        if held is not None:
            return held
        envelope.attempts += 1
        tally = Tally()
        deadline = time.monotonic() + get_settings().task_budget
        for request in plan:
            if time.monotonic() < deadline:
                tally.add(self._attempt(target, request, envelope))
            else:  # stay far inside the visibility timeout: park what is left, at once
                tally.add(Attempt(request, Retry(_BUDGET_SPENT, 0.0), HttpResult(None)))
        return self._settle(envelope, target, event.event_id, tally)

    def _admit(self, envelope: Envelope) -> tuple[Event, Target] | Settlement:
        """Schema, routing and idempotency: the event and its target, or why not."""
        try:
            event = load_event(envelope.event)
        except InvalidEvent as exc:
            return self._dead(envelope, "invalid", str(exc), _field(envelope.event, "target"))
        target = self.config.targets.get(event.target)
        if target is None:
            known = ", ".join(sorted(self.config.targets)) or "none"
            message = f"unknown target {event.target!r} (configured targets: {known})"
            return self._dead(envelope, "unroutable", message, event.target)
        if not self._claim(envelope, event, target):
            self._count(target.name, "duplicate")
            return Settlement("done", f"duplicate of event {event.event_id} (posted once)")
        return event, target

    def _prepare(
        self, envelope: Envelope, event: Event, target: Target
    ) -> tuple[Envelope, Event, list[OutboundRequest]] | Settlement:
        """Translate, dropping statuses the target has no use for and ones already overtaken."""
        plan = self._translate(event, target)
        if isinstance(plan, Skip):
            self._finish(target, event.event_id, "skipped")
            return Settlement("done", f"skipped: {plan.reason}")
        fresh = self.statuses.admit(target.name, event)
        if not fresh:
            self._finish(target, event.event_id, "stale")
            return Settlement("done", "stale: a newer status was already sent")
        if len(fresh) < len(event.message_ids):
            event = replace(event, message_ids=tuple(fresh))
            envelope = envelope.narrowed(fresh)
            plan = self._translate(event, target)
        assert not isinstance(plan, Skip)
        return envelope, event, plan

    def _translate(self, event: Event, target: Target) -> list[OutboundRequest] | Skip:
        return TARGET_KINDS[target.kind].translate(event, target.options)

    def _claim(self, envelope: Envelope, event: Event, target: Target) -> bool:
        """Take the event_id's idempotency claim, unless this envelope already holds it."""
        if envelope.claimed:
            return True
        hold = target.retry.max_age + 3600
        if envelope.replayed:
            self.events.force(target.name, event.event_id, envelope.id, hold)
        elif not self.events.claim(target.name, event.event_id, envelope.id, hold):
            return False
        envelope.claimed = True
        return True

    def _hold(self, envelope: Envelope, target: Target, requests: int) -> Settlement | None:
        """Park the envelope, without spending an attempt, while the target must be spared."""
        now = time.time()
        blocked = self.breaker.blocked_until(target.name, now)
        if blocked is not None:
            # Spread the wake-ups so the events do not all come back in one burst.
            due = blocked + random.uniform(0, self.breaker.policy.cooldown)
            return self._defer(envelope, target, due, "circuit open: the target keeps failing")
        if target.rate_limit:
            wait = self.limiter.acquire(target.name, target.rate_limit, requests, now)
            if wait < 0:
                return self._defer(envelope, target, now - wait, "rate limit reached")
            time.sleep(wait)
        return None

    def _defer(self, envelope: Envelope, target: Target, due: float, why: str) -> Settlement:
        deadline = envelope.first_seen + target.retry.max_age
        if time.time() >= deadline:
            message = f"gave up after {envelope.attempts} attempt(s): max_age passed ({why})"
            return self._dead(envelope, "exhausted", message, target.name)
        due = min(due, deadline)
        self.schedule.park(envelope, due)
        self._count(target.name, "deferred")
        return Settlement("retry", f"deferred until {due - time.time():.1f}s from now: {why}", due)

    def _finish(self, target: Target, event_id: str, outcome: str) -> None:
        """Mark the event done and count its outcome in one round trip (the hot path)."""
        pipe = self.counters.redis.pipeline(transaction=False)
        self.events.done(target.name, event_id, pipe)
        self._count(target.name, outcome, pipe)
        pipe.execute()

    def _attempt(self, target: Target, request: OutboundRequest, envelope: Envelope) -> Attempt:
        auth = self._authenticator(target)
        try:
            result = send(request, auth.headers(request), target.timeout)
        except AuthError as exc:
            result = HttpResult(None, network_error=f"credentials unavailable: {exc}")
        except Exception as exc:  # a bug must cost a retry, never the event or the worker
            log.exception("unexpected error sending to %s", target.name)
            result = HttpResult(None, network_error=f"internal error: {type(exc).__name__}")
        if result.status == 401:
            auth.invalidate()
        metrics.observe_request(target.name, request.endpoint, result.duration)
        outcome = classify(request.api, result)
        if isinstance(outcome, Retry):
            self.breaker.failure(target.name)
        else:  # an answer that is not a failure of the target (even a rejection) means it is up
            self.breaker.success(target.name)
        envelope.record(
            attempt=envelope.attempts,
            endpoint=request.endpoint,
            status=result.status,
            error=result.network_error,
            duration=round(result.duration, 4),
            outcome=type(outcome).__name__.lower(),
        )
        return Attempt(request, outcome, result)

    def _settle(
        self, envelope: Envelope, target: Target, event_id: str, tally: Tally
    ) -> Settlement:
        parts: list[str] = []
        if tally.delivered:
            parts.append(f"delivered {len(tally.delivered)} message id(s)")
        state: Literal["done", "retry", "dead"] = "done"
        due: float | None = None
        groups: dict[int, tuple[Attempt, list[str]]] = {}
        for mid, attempt in tally.rejected.items():
            groups.setdefault(id(attempt), (attempt, []))[1].append(mid)
        for attempt, mids in groups.values():
            reason = str(getattr(attempt.outcome, "reason", ""))
            dead = self._dead(
                envelope.narrowed(mids), "rejected", reason, target.name, attempt.result.status
            )
            parts.append(dead.summary)
            state = "dead"
        if tally.retry:
            parked = self._park(envelope.narrowed(tally.retry), target, tally)
            parts.append(parked.summary)
            state, due = ("retry", parked.due) if parked.state == "retry" else ("dead", None)
        if not tally.retry and not tally.rejected:
            self._finish(target, event_id, "delivered")
            metrics.observe_attempts(target.name, envelope.attempts)
        elif not tally.retry or state == "dead":
            # Nothing will be sent for this event any more: a corrected resend may go through.
            self.events.forget(target.name, event_id)
        for attempt in tally.attempts:
            logs.attempt(
                event_id,
                target.name,
                envelope.attempts,
                attempt.request.endpoint,
                attempt.result,
                type(attempt.outcome).__name__.lower(),
                due if isinstance(attempt.outcome, Retry) else None,
            )
        return Settlement(state, "; ".join(parts), due)

    def _park(self, envelope: Envelope, target: Target, tally: Tally) -> Settlement:
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
            return self._dead(
                envelope, "exhausted", message, target.name, tally.last_retry.result.status
            )
        self.schedule.park(envelope, now + delay)
        self._count(target.name, "retried")
        summary = f"retry {len(tally.retry)} message id(s) in {delay:.1f}s ({reason})"
        return Settlement("retry", summary, now + delay)

    def _dead(
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
            event_id=_field(envelope.event, "event_id"),
            target=target,
            status_code=status,
            first_seen=envelope.first_seen,
            history=envelope.history,
        )
        self.dead_letters.add(letter)
        self._count(target, f"dead:{reason}")
        reporting.report_dead_letter(letter)
        masked = reporting.mask_text(error)
        log.warning("dead letter id=%s reason=%s target=%s: %s", letter.id, reason, target, masked)
        return Settlement("dead", f"dead letter {letter.id} ({reason}): {error}")

    def _count(self, target: str | None, outcome: str, pipe: redis.Redis | None = None) -> None:
        self.counters.incr(target, outcome, pipe=pipe)
        metrics.count_outcome(target, outcome)

    def _authenticator(self, target: Target) -> Authenticator:
        auth = self._auth.get(target.name)
        if auth is None:
            auth = self._auth[target.name] = make_authenticator(target.auth)
        return auth


def _field(event: Any, name: str) -> str | None:
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
