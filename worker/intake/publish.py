"""Putting envelopes on the delivery queue: Celery messages of up to RELAY_BATCH envelopes.

Tasks are referred to by their registered names (`relay.deliver`, `relay.deliver_batch`),
never imported: publishing needs the app, not the task code, so neither imports the other.
The bundler publishes fresh events this way; the retry pump and `relay dlq replay` publish
envelopes that already carry their bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from tasks.envelope import Envelope, NewerFormat

DELIVER = "relay.deliver"
"""The task that delivers one envelope."""
DELIVER_BUNDLE = "relay.deliver_batch"
"""The task that delivers a bundle of envelopes. Named "batch" since the first release:
messages in queues and Flower's history carry the name, so it stays across upgrades."""
LABEL_LIMIT = 1024  # characters of a bundle's label in Flower


class Publisher:
    """Publishes envelopes on the app's delivery queue, `bundle_size` to a message."""

    def __init__(self, app: Any, bundle_size: int) -> None:
        self.app = app
        self.bundle_size = max(1, bundle_size)

    def publish(self, envelopes: Iterable[dict[str, Any]]) -> int:
        """Queue envelopes (their dict form) for delivery; return how many."""
        count = 0
        items = iter(envelopes)
        with self.app.producer_or_acquire() as producer:
            while bundle := list(islice(items, self.bundle_size)):
                args: list[Any]
                if len(bundle) == 1:
                    name, args, label = DELIVER, [bundle[0]], describe(bundle[0])
                else:
                    name, args, label = DELIVER_BUNDLE, [bundle], describe_all(bundle)
                self.app.send_task(
                    name, args=args, producer=producer, argsrepr=label, kwargsrepr="{}"
                )
                count += len(bundle)
        return count

    def publish_new(self, events: list[Any]) -> int:
        """Queue raw events (decoded JSON, exactly as received) in fresh envelopes."""
        return self.publish(Envelope(event).to_message() for event in events)


def describe(envelope: dict[str, Any]) -> str:
    """A short label for Flower and logs: never the event itself (it names a person)."""
    try:  # the long form, or the retry schedule's compact one
        parsed = Envelope.from_dict(envelope)
    except NewerFormat as exc:
        return f"(an envelope {exc})"
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
