"""Producers' side: put events on the inbox, and bundles of envelopes on the delivery queue.

Producers push raw events onto a plain Redis list, the inbox (one RPUSH per thousand events, in
any language). Every worker runs a bundler (`worker.intake.inbox`) that moves what is waiting there
into Celery messages of up to RELAY_BATCH events each: many events per message when producers
push in bulk or fast, one per message when they trickle in. Re-queued retries and replays skip
the inbox and are bundled the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import islice
from typing import Any

from tasks.envelope import Envelope
from worker.settings import get_settings

LABEL_LIMIT = 1024  # characters of a bundle's label in Flower


def publish_envelopes(envelopes: Iterable[dict[str, Any]]) -> int:
    """Queue envelopes for delivery, RELAY_BATCH to a Celery message; return how many."""
    from tasks.deliver import deliver, deliver_batch
    from worker.celery import app

    size = get_settings().batch_size
    count = 0
    items = iter(envelopes)
    with app.producer_or_acquire() as producer:
        while bundle := list(islice(items, size)):
            if len(bundle) == 1:
                deliver.apply_async(
                    args=[bundle[0]],
                    producer=producer,
                    argsrepr=describe(bundle[0]),
                    kwargsrepr="{}",
                )
            else:
                deliver_batch.apply_async(
                    args=[bundle], producer=producer, argsrepr=describe_all(bundle), kwargsrepr="{}"
                )
            count += len(bundle)
    return count


def publish_bundle(events: list[Any]) -> int:
    """Queue raw events (decoded JSON, exactly as received) as fresh envelopes."""
    return publish_envelopes(Envelope(event).to_message() for event in events)


def describe(envelope: dict[str, Any]) -> str:
    """A short label for Flower and logs: never the event itself (it names a person)."""
    parsed = Envelope.from_dict(envelope)  # the long form, or the retry schedule's compact one
    event, attempt = parsed.event, parsed.attempts + 1
    if not isinstance(event, dict):
        return f"(not an event object) attempt {attempt}"
    fields = [str(event.get(k, "?"))[:60] for k in ("event_id", "target", "status")]
    return f"{fields[0]} -> {fields[1]} {fields[2]} attempt {attempt}"


def describe_all(envelopes: list[dict[str, Any]]) -> str:
    """Flower's label for a bundle: how many, and each event's label, within Flower's limit
    (labels past it are not made: a bundle has up to RELAY_BATCH of them)."""
    label = f"{len(envelopes)} events: "
    for i, envelope in enumerate(envelopes):
        if len(label) >= LABEL_LIMIT:
            break
        label += ("; " if i else "") + describe(envelope)
    return label[:LABEL_LIMIT]


def publish_events(events: Iterable[Any]) -> int:
    """Push raw events (decoded JSON, exactly as received) onto the inbox; return how many."""
    from worker.intake.inbox import Inbox

    return Inbox().push(json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events)


def publish_event(event: Any) -> None:
    """Push one raw event onto the inbox."""
    publish_events([event])
