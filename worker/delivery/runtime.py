"""The process's one `Pipeline`, built lazily from the configuration file, and the entry the
Celery tasks and the feeder's lanes call."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from celery.exceptions import Reject

from tasks.envelope import Envelope, NewerFormat
from worker.config import load_config
from worker.delivery.pipeline import Pipeline
from worker.delivery.settle import Writes, field_of
from worker.delivery.settlement import Settlement, summarize
from worker.observe.labels import event_key, task_name
from worker.observe.outcomes import EventEnd
from worker.observe.taskevents import current
from worker.settings import get_settings
from worker.stores.deadletters import Reason

log = logging.getLogger("relay.task")
LEAVE_PAUSE = 1.0  # seconds before a message of a newer format goes back to the queue
BOOK_PATIENCE = 5.0
"""Seconds a bundle redone event by event (after a bug) first waits for the answers it read
to be recorded, so that the redo finds them done."""
_lock = threading.Lock()
_pipeline: Pipeline | None = None


def get_pipeline() -> Pipeline:
    """The pipeline of this process; raises `ConfigError` if the configuration is bad."""
    global _pipeline
    with _lock:
        if _pipeline is None:
            _pipeline = Pipeline(load_config(get_settings().config_path, secrets_for=("targets",)))
        return _pipeline


def run_bundle(envelopes: list[Any], task_id: str | None = None) -> tuple[Settlement, bool]:
    """Deliver a bundle (envelopes as a message carries them, for Celery task `task_id`): one
    settlement for all of it, and whether Flower was told each event's end (then the task
    needs to tell it nothing more).

    Whatever happens, each event ends delivered, parked or a dead letter: Redis trouble before
    anything was sent hands the message back (after that, the outcomes are written when Redis
    answers); an unexpected error settles the bundle event by event, so only the event that
    causes it becomes a dead letter.
    """
    began = time.monotonic()
    try:
        parsed = [Envelope.from_dict(e) for e in envelopes]
        settled = _process(parsed, set())
    except NewerFormat as exc:
        # A newer worker wrote this message (a rolling upgrade): hand it back for one that
        # knows its format, after a pause so that this worker does not take it straight back.
        log.warning("a message %s: handed back for a newer worker", exc)
        time.sleep(LEAVE_PAUSE)
        raise Reject(f"newer format: {exc}", requeue=True) from None
    except redis.RedisError as exc:
        log.warning(
            "Redis error while settling (%s: %s); message requeued", type(exc).__name__, exc
        )
        raise Reject(f"Redis error while settling: {type(exc).__name__}", requeue=True) from None
    verdict = summarize(settled, keys=[event_key(e.event) for e in parsed])
    events = current()
    told = events is not None and _quietly(
        lambda: events.finished(task_id, ends(parsed, settled), began)
    )
    if told:  # as Celery would have logged the task's end
        log.info("%s: %s: %.300s", task_name(len(parsed)), verdict.state, verdict.summary)
    return verdict, told


def run_local(envelopes: list[Envelope], settled: set[str] | None = None) -> list[Settlement]:
    """Deliver a bundle a worker took from the inbox itself (no Celery message): each event's
    settlement, in order. The ids of envelopes whose outcomes were recorded are added to
    `settled`. Raises redis.RedisError when nothing could be recorded (the lane keeps the
    items and delivers them again); never anything else."""
    return _process(envelopes, set() if settled is None else settled)


def ends(envelopes: list[Envelope], settled: list[Settlement]) -> list[EventEnd]:
    """Each event's end as Flower is told it."""
    return [
        EventEnd(e.event, e.attempts + 1, s.state, s.summary, s.due)
        for e, s in zip(envelopes, settled, strict=True)
    ]


def _quietly(tell: Callable[[], bool]) -> bool:
    """What Flower is told is best effort: a broker that cannot take a task event must not
    turn a bundle that was settled into one that failed (Celery then tells its end)."""
    try:
        return tell()
    except Exception as exc:
        log.warning("could not send a task event (%s)", type(exc).__name__)
        return False


def _process(envelopes: list[Envelope], settled: set[str]) -> list[Settlement]:
    pipeline = get_pipeline()
    try:
        return pipeline.process_bundle(envelopes, settled)
    except redis.RedisError:
        raise
    except Exception as exc:  # a bug: its type only, an event's text may name a person
        log.error(
            "unexpected %s in a bundle of %d; settling it event by event",
            type(exc).__name__,
            len(envelopes),
        )
    pipeline.book.drain(BOOK_PATIENCE)  # what was answered must be found done by the redo
    if len(envelopes) > 1:
        return [settled_one for e in envelopes for settled_one in _process([e], settled)]
    return [_give_up(pipeline, envelopes[0], settled)]


def _give_up(pipeline: Pipeline, envelope: Envelope, settled: set[str]) -> Settlement:
    """The last resort for an event that breaks the pipeline: a dead letter that says so,
    with whatever the envelope held of its message ids released for a replay."""
    if envelope.id in settled:  # recorded before the bug struck: nothing left to do
        return Settlement("done", "settled before an internal error (see the worker log)")
    reason: Reason = "rejected" if envelope.attempts else "invalid"
    target = field_of(envelope.event, "target")
    writes = Writes()
    why = "internal error processing the event (see the worker log)"
    settlement = pipeline.settler.dead(envelope, reason, why, target, writes)
    pipeline.settler.flush(writes)
    settled.add(envelope.id)
    return settlement
