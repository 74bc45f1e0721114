"""`relay trace EVENT_ID`: where one event is, read from what the relay stores anyway.

No index is kept for this (it would cost every event a Redis write); each place is looked at:

- the message hashes (`worker.stores.ledger`): field `e:<event_id>` says delivered when, or
  that an envelope holds the claim now. They are keyed by target and message id, so with the
  ids known (found below, or given) that is one read each; without, every message hash is
  scanned by a script, about a thousand keys per call;
- the retry schedule: parked until when, after which attempt, and why;
- the dead letters: which one, its reason and error;
- the inbox, the lanes (taken by a worker, being delivered), the delivery queue and the
  messages workers hold unacknowledged: waiting or in flight;
- the ingress's waiting room: a provider's receipt waiting for its correlation record.

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
from worker.intake.inflight import lane_keys, lanes
from worker.intake.parsing import unwrap
from worker.settings import get_settings
from worker.stores.connection import bytes_of, key, scan_match, text_of
from worker.stores.deadletters import DeadLetterStore
from worker.stores.ledger import message_key
from worker.stores.retries import RetrySchedule

CHUNK = 1000  # items or keys read per Redis call

# KEYS: none. ARGV: cursor, match pattern, count, field. One SCAN step over the message hashes,
# reading `field` of each key it returns: {next cursor, key, value, key, value, ...}.
_SCAN_CLAIMS = """
local step = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local out = {step[1]}
for _, k in ipairs(step[2]) do
  local v = redis.call('HGET', k, ARGV[4])
  if v then table.insert(out, k); table.insert(out, v) end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One place the event was found: what it means, since when or until when, details."""

    where: str
    """delivered, claimed, parked, dead letter, inbox, in flight, queued, waiting for
    correlation."""
    at: float | None
    detail: str
    target: str | None = None
    message_ids: tuple[str, ...] = ()
    why: str = ""
    """Free text (an error, an answer): masked where people read it."""


@dataclass
class Trace:
    """Everything found for one event id."""

    event_id: str
    sightings: list[Sighting] = field(default_factory=list)
    scan_calls: int | None = None
    """Script calls (about CHUNK keys each) spent scanning the message hashes for its
    delivery; None when its message ids were known."""


def trace(
    client: redis.Redis, raw: redis.Redis, eid: str, hints: Iterable[tuple[str, str]] = ()
) -> Trace:
    """Where event `eid` is. `hints`: (target, message id) pairs known to belong to it; the
    ones met in other places are added. `raw`: a client that returns bytes (inbox items)."""
    found = Trace(eid)
    found.sightings += dead_letters(client, eid)
    found.sightings += parked(client, eid)
    found.sightings += waiting(raw, eid)
    found.sightings += correlating(client, eid)
    known = set(hints) | {
        (s.target, mid) for s in found.sightings if s.target for mid in s.message_ids
    }
    if known:
        found.sightings += claims(client, eid, sorted(known))
    else:
        sightings, found.scan_calls = scan_claims(client, eid)
        found.sightings += sightings
    return found


def dead_letters(client: redis.Redis, eid: str) -> Iterator[Sighting]:
    for letter in DeadLetterStore(client).iter():
        if letter.event_id == eid or field_of(letter.event, "event_id") == eid:
            yield Sighting(
                "dead letter",
                None,
                f"dead letter {letter.id} ({letter.reason}) at {letter.failed_at} after "
                f"{letter.attempts} attempt(s)",
                letter.target,
                _message_ids(letter.event),
                letter.error,
            )


def parked(client: redis.Redis, eid: str) -> Iterator[Sighting]:
    for envelope, due in RetrySchedule(client).iter():
        if envelope is not None and field_of(envelope.event, "event_id") == eid:
            last = envelope.history[-1] if envelope.history else {}
            why = last.get("error") or last.get("status") or "-"
            yield Sighting(
                "parked",
                due,
                f"envelope {envelope.id}, {envelope.attempts} attempt(s) so far",
                field_of(envelope.event, "target"),
                _message_ids(envelope.event),
                f"last: {last.get('outcome', '-')} ({why})",
            )


def waiting(raw: redis.Redis, eid: str) -> Iterator[Sighting]:
    """The inbox (not taken yet), the lanes (taken by a worker), the delivery queue and the
    messages workers hold unacknowledged."""
    queue = get_settings().queue
    places: list[tuple[str, str, Iterable[Any]]] = [
        ("inbox", "in the inbox, not taken yet", _events_in_list(raw, key("inbox")))
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
            if field_of(event, "event_id") == eid:
                yield Sighting(where, None, detail, *_route(event))


def correlating(client: redis.Redis, eid: str) -> Iterator[Sighting]:
    """A provider's receipt in the ingress's waiting room, waiting for its record."""
    for item_id, text in client.hscan_iter(key("waiting", "items"), count=CHUNK):
        try:
            item = json.loads(text_of(text))
            receipt = Receipt.from_dict(item["receipt"])
            if receipt_event_id(item["source"], receipt) != eid:
                continue
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        deadline = float(item.get("deadline", 0))
        yield Sighting(
            "waiting for correlation",
            deadline,
            f"{item['source']} receipt {text_of(item_id)} waits for the correlation record "
            f"of {receipt.provider_message_id!r}",
        )


def claims(client: redis.Redis, eid: str, known: list[tuple[str, str]]) -> list[Sighting]:
    """The ledger's word on each (target, message id)."""
    pipe = client.pipeline(transaction=False)
    for target, mid in known:
        pipe.hget(message_key(target, mid), f"e:{eid}")
    return [
        _claim(target, mid, text_of(value))
        for (target, mid), value in zip(known, pipe.execute(), strict=True)
        if value
    ]


def scan_claims(client: redis.Redis, eid: str) -> tuple[list[Sighting], int]:
    """Every message hash holding a claim of `eid`, and how many script calls it took."""
    script = client.register_script(_SCAN_CLAIMS)
    prefix = key("msg", "")
    pattern, cursor, calls, found = scan_match("msg", ""), "0", 0, []
    while True:
        step = [text_of(v) for v in script(args=[cursor, pattern, CHUNK, f"e:{eid}"])]
        cursor, pairs = step[0], step[1:]
        calls += 1
        for name, value in zip(pairs[::2], pairs[1::2], strict=True):
            target, _, mid = name[len(prefix) :].partition(":")
            found.append(_claim(target, mid, value))
        if cursor == "0":
            return found, calls


def _claim(target: str, mid: str, value: str) -> Sighting:
    if value.startswith("d"):
        return Sighting("delivered", float(value[1:]), f"message id {mid}", target, (mid,))
    owner = value.removeprefix("p:")
    return Sighting("claimed", None, f"message id {mid} by envelope {owner}", target)


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
