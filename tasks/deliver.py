"""The Celery tasks: thin on purpose; everything they do lives in `worker.delivery`.

They are registered by name (`relay.deliver`, `relay.deliver_batch`) with `shared_task`, so
this module imports nothing of the runtime when it loads: publishers refer to the names, and
the pipeline is imported the first time a task runs, in a worker.

A task's state tells the truth in Flower: SUCCESS when delivered or skipped, RETRY when the
event was parked in the Redis retry schedule (no Celery countdown is used), FAILURE when it
became a dead letter, with the reason as the error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from celery.exceptions import Retry


class DeadLettered(Exception):
    """The event was stored as a dead letter; expected, so neither logged as a crash nor
    reported to Sentry a second time (the dead letter already was)."""


@shared_task(  # type: ignore[untyped-decorator]
    name="relay.deliver", acks_late=True, reject_on_worker_lost=True, throws=(DeadLettered,)
)
def deliver(envelope: dict[str, Any]) -> str:
    """Deliver one event envelope: posted, parked for retry, or dead-lettered."""
    return _report([envelope])


@shared_task(  # type: ignore[untyped-decorator]
    name="relay.deliver_batch", acks_late=True, reject_on_worker_lost=True, throws=(DeadLettered,)
)
def deliver_bundle(envelopes: list[dict[str, Any]]) -> str:
    """Deliver a bundle of envelopes, each settled on its own. Flower shows the worst outcome
    (a dead letter over a retry over done) and every event's summary."""
    return _report(envelopes)


def _report(envelopes: list[dict[str, Any]]) -> str:
    """Run the bundle; its summary as the result, or as the Retry or DeadLettered error."""
    from worker.delivery.runtime import run_bundle

    verdict = run_bundle(envelopes)
    if verdict.state == "dead":
        raise DeadLettered(verdict.summary)
    if verdict.state == "retry":
        raise Retry(verdict.summary, when=datetime.fromtimestamp(verdict.due or 0.0, UTC))
    return verdict.summary
