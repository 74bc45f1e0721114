"""`relay trace`: where an event is, read from what the relay stores anyway.

No index is kept for this (it would cost every event a Redis write); each place is looked at:

- the message hashes (`worker.ops.trace_claims`): delivered when, or held by an envelope now;
- the retry schedule: parked until when, after which attempt, and why;
- the dead letters: which one, its reason and error;
- the inbox, the lanes (taken by a worker, being delivered), the delivery queue and the
  messages workers hold unacknowledged: waiting or in flight;
- the ingress's waiting room: a provider's receipt waiting for its correlation record.

What is looked for (one event id, a provider's message, a target's message) is a `Wanted`.
Each place is read in bounded chunks; the inbox and the schedule are bounded by their own
limits, the dead letters by RELAY_DLQ_MAX_SIZE.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from tasks.envelope import Envelope, NewerFormat
from tasks.upstream.events import event_id as receipt_event_id
from tasks.upstream.receipts import Receipt
from worker.broker import UNACKED, queue_lists
from worker.delivery.settle import field_of
from worker.intake.inflight import lane_keys, lanes, resumed_key
from worker.intake.parsing import unwrap
from worker.ops.cli.output import stamp
from worker.ops.trace_claims import Claim, read_claims, scan_claims
from worker.ops.wanted import Wanted
from worker.settings import get_settings
from worker.stores.connection import bytes_of, key, text_of
from worker.stores.deadletters import DeadLetterStore
from worker.stores.retries import RetrySchedule

CHUNK = 1000  # items read per Redis call


@dataclass(frozen=True, slots=True)
class Sighting:
    """One place an event was found: what it means, since when or until when, details."""

    where: str
    """delivered, claimed, parked, dead letter, inbox, in flight, queued, waiting for
    correlation."""
    at: float | None
    detail: str
    target: str | None = None
    message_ids: tuple[str, ...] = ()
    why: str = ""
    """Free text (an error, an answer): masked where people read it."""
    event_id: str | None = None


@dataclass
class Trace:
    """Everything found for what was wanted."""

    wanted: Wanted
    sightings: list[Sighting] = field(default_factory=list)
    scan_calls: int | None = None
    """Script calls (about a thousand keys each) spent scanning the message hashes for its
    delivery; None when its message ids were known."""


def trace(client: redis.Redis, raw: redis.Redis, wanted: Wanted) -> Trace:
    """Where the wanted events are. `raw`: a client that returns bytes (inbox items). The
    (target, message id) pairs met in other places are read for claims, besides those given."""
    found = Trace(wanted)
    found.sightings += dead_letters(client, wanted)
    found.sightings += parked(client, wanted)
    found.sightings += waiting(raw, wanted)
    found.sightings += correlating(client, wanted)
    known = set(wanted.known) | {
        (s.target, mid) for s in found.sightings if s.target for mid in s.message_ids
    }
    if known:
        claims = read_claims(client, wanted, sorted(known))
    else:
        claims, found.scan_calls = scan_claims(client, wanted)
    found.sightings += [_claim(c) for c in claims]
    return found


def dead_letters(client: redis.Redis, wanted: Wanted) -> Iterator[Sighting]:
    for letter in DeadLetterStore(client).iter():
        if letter.event_id in wanted.ids or wanted.is_event(letter.event):
            yield Sighting(
                "dead letter",
                None,
                f"{letter.id} ({letter.reason}), failed at {stamp(letter.failed_at, ms=True)} "
                f"after {letter.attempts} attempt(s)",
                letter.target,
                _message_ids(letter.event),
                letter.error,
                letter.event_id or field_of(letter.event, "event_id"),
            )


def parked(client: redis.Redis, wanted: Wanted) -> Iterator[Sighting]:
    for envelope, due in RetrySchedule(client).iter():
        if envelope is not None and wanted.is_event(envelope.event):
            last = envelope.history[-1] if envelope.history else {}
            why = last.get("error") or last.get("status") or "-"
            yield Sighting(
                "parked",
                due,
                f"envelope {envelope.id}, {envelope.attempts} attempt(s) so far",
                field_of(envelope.event, "target"),
                _message_ids(envelope.event),
                f"last: {last.get('outcome', '-')} ({why})",
                field_of(envelope.event, "event_id"),
            )


def waiting(raw: redis.Redis, wanted: Wanted) -> Iterator[Sighting]:
    """The inbox (not taken yet), the lanes (taken by a worker), the delivery queue and the
    messages workers hold unacknowledged."""
    queue = get_settings().queue
    places: list[tuple[str, str, Iterable[Any]]] = [
        ("inbox", "in the inbox, not taken yet", _events_in_list(raw, key("inbox"))),
        ("inbox", "taken back from a stopped worker", _events_in_list(raw, resumed_key())),
    ]
    places += [
        ("in flight", f"taken by worker lane {lane}", _events_in_list(raw, lane_keys(lane)[0]))
        for lane in lanes(raw)
    ]
    places += [
        ("queued", f"in the queue {queue!r}", _events_in_messages(_list(raw, name)))
        for name in queue_lists(queue)
    ]
    unacked = (v for _, v in raw.hscan_iter(UNACKED, count=CHUNK))
    places.append(
        ("in flight", "held by a worker (unacked)", _events_in_messages(unacked, unacked=True))
    )
    for where, detail, events in places:
        for event in events:
            if wanted.is_event(event):
                yield Sighting(
                    where, None, detail, *_route(event), event_id=field_of(event, "event_id")
                )


def correlating(client: redis.Redis, wanted: Wanted) -> Iterator[Sighting]:
    """A provider's receipt in the ingress's waiting room, waiting for its record."""
    for item_id, text in client.hscan_iter(key("waiting", "items"), count=CHUNK):
        try:
            item = json.loads(text_of(text))
            receipt = Receipt.from_dict(item["receipt"])
            if not wanted.is_receipt(item["source"], receipt):
                continue
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        yield Sighting(
            "waiting for correlation",
            float(item.get("deadline", 0)),
            f"{item['source']} receipt {text_of(item_id)} ({receipt.status or '-'}) waits for "
            f"the correlation record of {receipt.provider_message_id!r}",
            event_id=receipt_event_id(item["source"], receipt),
        )


def _claim(claim: Claim) -> Sighting:
    at, mid = claim.delivered_at, claim.message_id
    if at is not None:
        return Sighting(
            "delivered", at, f"message id {mid}", claim.target, (mid,), event_id=claim.event_id
        )
    detail = f"message id {mid} by envelope {claim.owner}"
    return Sighting("claimed", None, detail, claim.target, event_id=claim.event_id)


def _list(raw: redis.Redis, name: str) -> Iterator[bytes]:
    size = int(raw.llen(name))
    for start in range(0, size, CHUNK):
        yield from (bytes_of(item) for item in raw.lrange(name, start, start + CHUNK - 1))


def _events_in_list(raw: redis.Redis, name: str) -> Iterator[Any]:
    for item in _list(raw, name):
        yield _event_of(_loads(unwrap(item)[1]))


def _events_in_messages(messages: Iterable[Any], unacked: bool = False) -> Iterator[Any]:
    """The events in Celery messages as kombu's Redis transport stores them (JSON with a
    base64 body of [args, kwargs, embed]; unacked ones wrapped as [message, exchange, key])."""
    for text in messages:
        message = _loads(text)
        if unacked and isinstance(message, list) and message:
            message = message[0]
        if not isinstance(message, dict):
            continue
        try:
            args = _loads(base64.b64decode(message.get("body", "")))[0]
        except (ValueError, TypeError, IndexError, KeyError):
            continue
        for envelope in args[0] if args and isinstance(args[0], list) else args:
            yield _event_of(envelope)


def _loads(data: Any) -> Any:
    try:
        return json.loads(data)
    except (ValueError, TypeError, RecursionError):
        return None


def _event_of(item: Any) -> Any:
    try:
        return Envelope.from_dict(item).event
    except NewerFormat:
        return None


def _message_ids(event: Any) -> tuple[str, ...]:
    ids = event.get("message_ids") if isinstance(event, dict) else None
    return tuple(i for i in ids if isinstance(i, str)) if isinstance(ids, list) else ()


def _route(event: Any) -> tuple[str | None, tuple[str, ...]]:
    return field_of(event, "target"), _message_ids(event)
