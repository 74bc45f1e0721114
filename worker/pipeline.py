"""One delivery, start to finish: schema → route → translate → send → classify → settle.

Settling is per message id: what was accepted is done, what may succeed later is parked in the
retry schedule, what cannot succeed becomes a dead letter carrying only its own message ids.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from tasks.backoff import next_retry_delay
from tasks.classify import Delivered, HttpResult, Outcome, Retry, classify
from tasks.outbound import NotDeliverable, OutboundRequest, Skip
from tasks.schemas import InvalidEvent, load_event
from tasks.targets import TARGET_KINDS
from worker.auth import Authenticator, AuthError, make_authenticator
from worker.config import RelayConfig, Target
from worker.counters import Counters, DeliveredLog
from worker.deadletters import DeadLetter, DeadLetterStore, Reason
from worker.envelope import Envelope
from worker.retryset import RetrySchedule
from worker.transport import send

log = logging.getLogger("relay.pipeline")


@dataclass
class _Tally:
    """Message ids of one attempt, sorted by what happened to them."""

    delivered: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    retry_after: float | None = None
    retry_reason: str = ""
    retry_status: int | None = None
    rejected: dict[str, tuple[str, int | None]] = field(default_factory=dict)


class Relay:
    """Processes envelopes against one checked configuration and one Redis."""

    def __init__(self, config: RelayConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.dead_letters = DeadLetterStore(client)
        self.schedule = RetrySchedule(client)
        self.counters = Counters(client)
        self.delivered_log = DeliveredLog(client)
        self._auth: dict[str, Authenticator] = {}

    def process(self, envelope: Envelope) -> str:
        """Deliver, park or dead-letter one envelope; return a one-line summary."""
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
            self.counters.incr(target.name, "duplicate")
            return f"duplicate of delivered event {event.event_id}"
        try:
            plan = TARGET_KINDS[target.kind].translate(event, target.options)
        except NotDeliverable as exc:
            message = f"{exc} (target {target.name!r} is a {target.kind} target)"
            return self._dead(envelope, "invalid", message, target.name)
        if isinstance(plan, Skip):
            self.counters.incr(target.name, "skipped")
            return f"skipped: {plan.reason}"
        envelope.attempts += 1
        tally = _Tally()
        for request in plan:
            self._tally(tally, request, *self._attempt(target, request, envelope))
        return self._settle(envelope, target, event.event_id, tally)

    def _attempt(
        self, target: Target, request: OutboundRequest, envelope: Envelope
    ) -> tuple[Outcome, int | None]:
        auth = self._authenticator(target)
        try:
            result = send(request, auth.headers(request), target.timeout)
        except AuthError as exc:
            result = HttpResult(None, network_error=f"credentials unavailable: {exc}")
        except Exception as exc:  # a bug must cost a retry, never the event or the worker
            log.exception("unexpected error sending to %s", target.name)
            result = HttpResult(None, network_error=f"internal error: {type(exc).__name__}")
        outcome = classify(request.api, result)
        if result.status == 401:
            auth.invalidate()
        envelope.record(
            attempt=envelope.attempts,
            endpoint=request.endpoint,
            status=result.status,
            error=result.network_error,
            duration=round(result.duration, 4),
            outcome=type(outcome).__name__.lower(),
        )
        log.info(
            "attempt event=%s target=%s attempt=%d endpoint=%s status=%s duration=%.3f outcome=%s",
            _field(envelope.event, "event_id"),
            target.name,
            envelope.attempts,
            request.endpoint,
            result.status or result.network_error,
            result.duration,
            type(outcome).__name__,
        )
        return outcome, result.status

    def _tally(
        self, tally: _Tally, request: OutboundRequest, outcome: Outcome, status: int | None
    ) -> None:
        ids = list(request.message_ids)
        if isinstance(outcome, Delivered):
            tally.delivered += ids
        elif isinstance(outcome, Retry):
            tally.retry += ids
            tally.retry_reason, tally.retry_status = outcome.reason, status
            if outcome.after is not None:
                tally.retry_after = max(tally.retry_after or 0.0, outcome.after)
        else:
            tally.rejected.update({mid: (outcome.reason, status) for mid in ids})

    def _settle(self, envelope: Envelope, target: Target, event_id: str, tally: _Tally) -> str:
        summary: list[str] = []
        if tally.delivered:
            summary.append(f"delivered {len(tally.delivered)} message id(s)")
        by_reason: dict[tuple[str, int | None], list[str]] = {}
        for mid, why in tally.rejected.items():
            by_reason.setdefault(why, []).append(mid)
        for (reason, status), mids in by_reason.items():
            summary.append(
                self._dead(envelope.narrowed(mids), "rejected", reason, target.name, status)
            )
        if tally.retry:
            summary.append(self._park(envelope.narrowed(tally.retry), target, tally))
        if not tally.retry and not tally.rejected:
            self.delivered_log.mark(target.name, event_id)
            self.counters.incr(target.name, "delivered")
        return "; ".join(summary)

    def _park(self, envelope: Envelope, target: Target, tally: _Tally) -> str:
        now = time.time()
        delay = next_retry_delay(
            target.retry, envelope.attempts, envelope.first_seen, now, tally.retry_after
        )
        if delay is None:
            age = now - envelope.first_seen
            message = (
                f"gave up after {envelope.attempts} attempt(s) over {age:.0f}s; "
                f"last: {tally.retry_reason}"
            )
            return self._dead(envelope, "exhausted", message, target.name, tally.retry_status)
        self.schedule.park(envelope, now + delay)
        self.counters.incr(target.name, "retried")
        return f"retry {len(tally.retry)} message id(s) in {delay:.1f}s ({tally.retry_reason})"

    def _dead(
        self,
        envelope: Envelope,
        reason: Reason,
        error: str,
        target: str | None,
        status: int | None = None,
    ) -> str:
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
        self.counters.incr(target, f"dead:{reason}")
        log.warning("dead letter id=%s reason=%s target=%s: %s", letter.id, reason, target, error)
        return f"dead letter {letter.id} ({reason}): {error}"

    def _authenticator(self, target: Target) -> Authenticator:
        auth = self._auth.get(target.name)
        if auth is None:
            auth = self._auth[target.name] = make_authenticator(target.auth)
        return auth


def _field(event: Any, name: str) -> str | None:
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
