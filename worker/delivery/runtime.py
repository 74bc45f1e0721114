"""The process's one `Pipeline`, built lazily from the configuration file, and the entry the
Celery tasks call."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.exceptions import Reject

from tasks.envelope import Envelope
from worker.config import load_config
from worker.delivery.pipeline import Pipeline
from worker.delivery.settlement import Settlement, summarize
from worker.settings import get_settings

log = logging.getLogger("relay.task")
_lock = threading.Lock()
_pipeline: Pipeline | None = None


def get_pipeline() -> Pipeline:
    """The pipeline of this process; raises `ConfigError` if the configuration is bad."""
    global _pipeline
    with _lock:
        if _pipeline is None:
            _pipeline = Pipeline(load_config(get_settings().config_path))
        return _pipeline


def run_bundle(envelopes: list[dict[str, Any]]) -> Settlement:
    """Deliver a bundle (envelopes as a message carries them); one settlement for all of it."""
    try:
        settled = get_pipeline().process_bundle([Envelope.from_dict(e) for e in envelopes])
    except redis.RedisError as exc:
        # The outcomes could not be recorded: hand the message back rather than lose it (the
        # idempotency claims stop what was already posted from being posted again).
        log.warning(
            "Redis error while settling (%s: %s); message requeued", type(exc).__name__, exc
        )
        raise Reject(f"Redis error while settling: {type(exc).__name__}", requeue=True) from None
    return summarize(settled)
