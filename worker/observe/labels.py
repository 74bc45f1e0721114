"""What Flower and the logs show for a delivery: event ids, targets, statuses and attempts;
never the event itself (it names a person). Each field as `worker.observe.shown` writes it
(one line, masked, no markup): an invalid event's fields are whatever a producer wrote."""

from __future__ import annotations

from typing import Any

from tasks.envelope import Envelope, NewerFormat
from worker.observe.shown import shown, shown_id

DELIVER = "relay.deliver"
"""The task that delivers one envelope."""
DELIVER_BUNDLE = "relay.deliver_batch"
"""The task that delivers a bundle of envelopes. Named "batch" since the first release:
messages in queues and Flower's history carry the name, so it stays across upgrades."""
LABEL_LIMIT = 1024  # characters of full labels in a bundle's; past it, only the event ids


def event_key(event: Any) -> str:
    """How an event is named where it is shown: its event id (the first 60 characters)."""
    if not isinstance(event, dict):
        return "(not an event object)"
    return shown_id(str(event.get("event_id", "?"))[:60])


def label(event: Any, attempt: int) -> str:
    """One event's label: `EVENT_ID -> TARGET STATUS attempt N`."""
    if not isinstance(event, dict):
        return f"(not an event object) attempt {attempt}"
    target, status = (shown(str(event.get(k, "?"))[:60]) for k in ("target", "status"))
    return f"{event_key(event)} -> {target} {status} attempt {attempt}"


def bundle_label(labelled: list[tuple[Any, int]]) -> str:
    """A bundle's label: how many, each event's label while they fit in LABEL_LIMIT, then
    the remaining events' ids, so that Flower's task search finds every event of the bundle."""
    if len(labelled) == 1:
        return label(*labelled[0])
    text = f"{len(labelled)} events: "
    rest = []
    for i, (event, attempt) in enumerate(labelled):
        if len(text) < LABEL_LIMIT:
            text += ("; " if i else "") + label(event, attempt)
        elif isinstance(event, dict):
            rest.append(event_key(event))
    return text + (f"; and {' '.join(rest)}" if rest else "")


def task_name(count: int) -> str:
    """The task a delivery of `count` events is shown as."""
    return DELIVER if count == 1 else DELIVER_BUNDLE


def describe(envelope: dict[str, Any]) -> str:
    """The label of an envelope as a message carries it (long or compact form)."""
    return bundle_label([_labelled(envelope)])


def describe_all(envelopes: list[dict[str, Any]]) -> str:
    """The label of a bundle of envelopes as a message carries them."""
    return bundle_label([_labelled(e) for e in envelopes])


def _labelled(envelope: dict[str, Any]) -> tuple[Any, int]:
    try:
        parsed = Envelope.from_dict(envelope)
    except NewerFormat:
        return None, 0
    return parsed.event, parsed.attempts + 1
