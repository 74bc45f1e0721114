"""One delivery, start to finish: schema → route → translate → send → classify → settle.

Settling is per message id: what was accepted is done, what may succeed later is parked in the
retry schedule, what cannot succeed becomes a dead letter carrying only its own message ids.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from tasks.backoff import next_retry_delay
from tasks.classify import Delivered, HttpResult, Outcome, Retry, classify
from tasks.outbound import NotDeliverable, OutboundRequest, Skip
from tasks.schemas import InvalidEvent, load_event
from tasks.targets import TARGET_KINDS
from worker import logs, metrics, reporting
from worker.auth import Authenticator, AuthError, make_authenticator
from worker.config import RelayConfig, Target
from worker.counters import Counters, DeliveredLog
from worker.deadletters import DeadLetter, DeadLetterStore, Reason
from worker.envelope import Envelope
from worker.retryset import RetrySchedule
from worker.settings import get_settings
from worker.transport import send

log = logging.getLogger("relay.pipeline")
_BUDGET_SPENT = "not sent yet: this task's time budget (RELAY_TASK_BUDGET) ran out"


@dataclass(frozen=True, slots=True)
class Settlement:
    """What became of one envelope: `done` (delivered or skipped), parked `retry`, or `dead`."""

    state: Literal["done", "retry", "dead"]
    summary: str
    due: float | None = None


@dataclass(slots=True)
class _Attempt:
    request: OutboundRequest
    outcome: Outcome
    result: HttpResult


@dataclass
class _Tally:
    """Message ids of one attempt, sorted by what happened to them."""

    attempts: list[_Attempt] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    retry_after: float | None = None
    last_retry: _Attempt | None = None
    rejected: dict[str, _Attempt] = field(default_factory=dict)

    def add(self, attempt: _Attempt) -> None:
        self.attempts.append(attempt)
        ids = list(attempt.request.message_ids)
        if isinstance(attempt.outcome, Delivered):
            self.delivered += ids
        elif isinstance(attempt.outcome, Retry):
            self.retry += ids
            self.last_retry = attempt
            if attempt.outcome.after is not None:
                self.retry_after = max(self.retry_after or 0.0, attempt.outcome.after)
        else:
            self.rejected.update(dict.fromkeys(ids, attempt))


class Relay:
    """Processes envelopes against one checked configuration and one Redis."""

    def __init__(self, config: RelayConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.dead_letters = DeadLetterStore(client)
        self.schedule = RetrySchedule(client)
        self.counters = Counters(client)
        self.delivered_log = DeliveredLog(client)
        self._auth: dict[str, Authenticator] = {}

    def process(self, envelope: Envelope) -> Settlement:
        """Deliver, park or dead-letter one envelope."""
        try:
            event = load_event(envelope.event)
        except InvalidEvent as exc:
            return self._dead(envelope, "invalid", str(exc), _field(envelope.event, "target"))
        target = self.config.targets.get(event.target)
        if target is None:
            known = ", ".join(sorted(self.config.targets)) or "none"
            message = f"unknown target {event.target!r} (configured targets: {known})"
            return self._dead(envelope, "unroutable", message, event.target)
        if self.delivered_log.seen(target.name, event.event_id):
            self._count(target.name, "duplicate")
            return Settlement("done", f"duplicate of delivered event {event.event_id}")
        try:
            plan = TARGET_KINDS[target.kind].translate(event, target.options)
        except NotDeliverable as exc:
            message = f"{exc} (target {target.name!r} is a {target.kind} target)"
            return self._dead(envelope, "invalid", message, target.name)
        if isinstance(plan, Skip):
            self._count(target.name, "skipped")
            return Settlement("done", f"skipped: {plan.reason}")
        envelope.attempts += 1
        tally = _Tally()
        deadline = time.monotonic() + get_settings().task_budget
        for request in plan:
            if time.monotonic() < deadline:
                tally.add(self._attempt(target, request, envelope))
            else:  # stay far inside the visibility timeout: park what is left, at once
                tally.add(_Attempt(request, Retry(_BUDGET_SPENT, 0.0), HttpResult(None)))
        return self._settle(envelope, target, event.event_id, tally)

    def _attempt(self, target: Target, request: OutboundRequest, envelope: Envelope) -> _Attempt:
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
        envelope.record(
            attempt=envelope.attempts,
            endpoint=request.endpoint,
            status=result.status,
            error=result.network_error,
            duration=round(result.duration, 4),
            outcome=type(outcome).__name__.lower(),
        )
        return _Attempt(request, outcome, result)

    def _settle(
        self, envelope: Envelope, target: Target, event_id: str, tally: _Tally
    ) -> Settlement:
        parts: list[str] = []
        if tally.delivered:
            parts.append(f"delivered {len(tally.delivered)} message id(s)")
        state: Literal["done", "retry", "dead"] = "done"
        due: float | None = None
        groups: dict[int, tuple[_Attempt, list[str]]] = {}
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
            self.delivered_log.mark(target.name, event_id)
            self._count(target.name, "delivered")
            metrics.observe_attempts(target.name, envelope.attempts)
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

    def _park(self, envelope: Envelope, target: Target, tally: _Tally) -> Settlement:
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
        log.warning(
            "dead letter id=%s reason=%s target=%s: %s",
            letter.id,
            reason,
            target,
            reporting.mask_text(error),
        )
        return Settlement("dead", f"dead letter {letter.id} ({reason}): {error}")

    def _count(self, target: str | None, outcome: str) -> None:
        self.counters.incr(target, outcome)
        metrics.count_outcome(target, outcome)

    def _authenticator(self, target: Target) -> Authenticator:
        auth = self._auth.get(target.name)
        if auth is None:
            auth = self._auth[target.name] = make_authenticator(target.auth)
        return auth


def _field(event: Any, name: str) -> str | None:
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
