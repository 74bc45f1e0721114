"""The Celery task: thin on purpose; everything it does lives in `worker.pipeline`."""

from __future__ import annotations

from typing import Any

from worker.celery import app
from worker.envelope import Envelope
from worker.runtime import get_relay


@app.task(name="relay.deliver", acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
def deliver(envelope: dict[str, Any]) -> str:
    """Deliver one event envelope: posted, parked for retry, or dead-lettered."""
    return get_relay().process(Envelope.from_dict(envelope))
