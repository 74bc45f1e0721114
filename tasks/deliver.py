"""The Celery task: thin on purpose; everything it does lives in `worker.delivery.pipeline`.

Its state tells the truth in Flower: SUCCESS when delivered or skipped, RETRY when the event
was parked in the Redis retry schedule (no Celery countdown is used), FAILURE when it became a
dead letter, with the reason as the error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis
from celery.exceptions import Reject, Retry

from tasks.envelope import Envelope
from worker.celery import app
from worker.delivery.runtime import get_relay
from worker.delivery.settlement import Settlement
from worker.observe.sentry import mask_text

log = logging.getLogger("relay.task")


class DeadLettered(Exception):
    """The event was stored as a dead letter; expected, so neither logged as a crash nor
    reported to Sentry a second time (the dead letter already was)."""


@app.task(  # type: ignore[untyped-decorator]
    name="relay.deliver", acks_late=True, reject_on_worker_lost=True, throws=(DeadLettered,)
)
def deliver(envelope: dict[str, Any]) -> str:
    """Deliver one event envelope: posted, parked for retry, or dead-lettered."""
    return _report(_run([envelope]))


@app.task(  # type: ignore[untyped-decorator]
    name="relay.deliver_batch", acks_late=True, reject_on_worker_lost=True, throws=(DeadLettered,)
)
def deliver_batch(envelopes: list[dict[str, Any]]) -> str:
    """Deliver a bundle of envelopes, each settled on its own. Flower shows the worst outcome
    (a dead letter over a retry over done) and every event's summary."""
    return _report(_run(envelopes))


def _run(envelopes: list[dict[str, Any]]) -> list[Settlement]:
    try:
        return get_relay().process_batch([Envelope.from_dict(e) for e in envelopes])
    except redis.RedisError as exc:
        # The outcomes could not be recorded: hand the message back rather than lose it (the
        # idempotency claims stop what was already posted from being posted again).
        log.warning(
            "Redis error while settling (%s: %s); message requeued", type(exc).__name__, exc
        )
        raise Reject(f"Redis error while settling: {type(exc).__name__}", requeue=True) from None


def _report(settled: list[Settlement]) -> str:
    if len(settled) == 1:
        summary = mask_text(settled[0].summary)
    else:
        summary = mask_text("; ".join(f"[{i}] {s.summary}" for i, s in enumerate(settled)))
    if any(s.state == "dead" for s in settled):
        raise DeadLettered(summary)
    due = [s.due or 0.0 for s in settled if s.state == "retry"]
    if due:
        raise Retry(summary, when=datetime.fromtimestamp(min(due), UTC))
    return summary
