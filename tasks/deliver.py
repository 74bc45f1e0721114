"""The Celery task: thin on purpose; everything it does lives in `worker.pipeline`.

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

from worker.celery import app
from worker.envelope import Envelope
from worker.reporting import mask_text
from worker.runtime import get_relay

log = logging.getLogger("relay.task")


class DeadLettered(Exception):
    """The event was stored as a dead letter; expected, so neither logged as a crash nor
    reported to Sentry a second time (the dead letter already was)."""


@app.task(  # type: ignore[untyped-decorator]
    name="relay.deliver", acks_late=True, reject_on_worker_lost=True, throws=(DeadLettered,)
)
def deliver(envelope: dict[str, Any]) -> str:
    """Deliver one event envelope: posted, parked for retry, or dead-lettered."""
    try:
        settled = get_relay().process(Envelope.from_dict(envelope))
    except redis.RedisError as exc:
        # The outcome could not be recorded: hand the message back rather than lose it.
        log.warning(
            "Redis error while settling (%s: %s); message requeued", type(exc).__name__, exc
        )
        raise Reject(f"Redis error while settling: {type(exc).__name__}", requeue=True) from None
    summary = mask_text(settled.summary)
    if settled.state == "retry":
        when = datetime.fromtimestamp(settled.due or 0, UTC)
        raise Retry(summary, when=when)
    if settled.state == "dead":
        raise DeadLettered(summary)
    return summary
