"""Producers' side: put events (or parked envelopes) on the delivery queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from worker.envelope import Envelope


def publish_envelopes(envelopes: Iterable[dict[str, Any]]) -> int:
    """Queue envelopes for delivery over one pooled broker connection; return how many."""
    from tasks.deliver import deliver
    from worker.celery import app

    count = 0
    with app.producer_or_acquire() as producer:
        for envelope in envelopes:
            deliver.apply_async(
                args=[envelope], producer=producer, argsrepr=describe(envelope), kwargsrepr="{}"
            )
            count += 1
    return count


def describe(envelope: dict[str, Any]) -> str:
    """A short label for Flower and logs: never the event itself (it names a person)."""
    event = envelope.get("event")
    attempt = int(envelope.get("attempts", 0)) + 1
    if not isinstance(event, dict):
        return f"(not an event object) attempt {attempt}"
    fields = [str(event.get(k, "?"))[:60] for k in ("event_id", "target", "status")]
    return f"{fields[0]} -> {fields[1]} {fields[2]} attempt {attempt}"


def publish_events(events: Iterable[Any]) -> int:
    """Queue raw events (decoded JSON, exactly as received) for delivery; return how many."""
    return publish_envelopes(Envelope(event).to_dict() for event in events)


def publish_event(event: Any) -> None:
    """Queue one raw event for delivery."""
    publish_events([event])
