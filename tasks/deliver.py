"""The Celery tasks: thin on purpose; everything they do lives in `worker.delivery`.

They are registered by name (`relay.deliver`, `relay.deliver_batch`) with `shared_task`, so
this module imports nothing of the runtime when it loads: publishers refer to the names, and
the pipeline is imported the first time a task runs, in a worker.

A task's state tells the truth in Flower: SUCCESS when delivered or skipped, PARKED when the
event was parked in the Redis retry schedule (no Celery countdown is used), FAILURE when it
became a dead letter, with the reason as the error; a bundle whose events ended differently is
told as a task per outcome (`worker.observe.taskevents`). While Flower watches, the worker
tells it so itself and the task ends with Celery's Ignore (acknowledged, nothing more sent);
otherwise it returns, raises Retry or raises DeadLettered, as Celery's log expects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from celery.exceptions import Ignore, Retry


class DeadLettered(Exception):
    """The event was stored as a dead letter; expected, so neither logged as a crash nor
    reported to Sentry a second time (the dead letter already was)."""


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="relay.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    throws=(DeadLettered,),
)
def deliver(self: Any, envelope: dict[str, Any]) -> str:
    """Deliver one event envelope: posted, parked for retry, or dead-lettered."""
    return _report(self.request.id, [envelope])


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="relay.deliver_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    throws=(DeadLettered,),
)
def deliver_bundle(self: Any, envelopes: list[dict[str, Any]]) -> str:
    """Deliver a bundle of envelopes, each settled on its own."""
    return _report(self.request.id, envelopes)


def _report(task_id: str | None, envelopes: list[dict[str, Any]]) -> str:
    """Run the bundle; its summary as the result, or as the Retry or DeadLettered error."""
    from worker.delivery.runtime import run_bundle

    verdict, told = run_bundle(envelopes, task_id)
    if told:
        raise Ignore()
    if verdict.state == "dead":
        raise DeadLettered(verdict.summary)
    if verdict.state == "retry":
        raise Retry(verdict.summary, when=datetime.fromtimestamp(verdict.due or 0.0, UTC))
    return verdict.summary
