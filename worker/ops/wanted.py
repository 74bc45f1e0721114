"""What `relay trace` looks for: one event by its id, every event the ingress made of one
provider message, or every event of one target message.

An event made from a provider's receipt has the id `rcpt-` + the first 40 hex digits of the
SHA-256 of `source`, the provider message id, the canonical status and the error code (a
failure's; empty otherwise) joined by the unit separator (0x1f): the same for every copy of one
callback, so a repeated callback is a duplicate. No index from provider ids to event ids is
kept (it would cost every receipt a write); a trace works the ids out instead:

- events held whole (dead letters, parked, waiting, in flight) say their status and error code,
  so whether one came from this provider message is computed exactly;
- a delivery is only a claim `e:<event id>` in its message hash: the statuses without an error
  code give three ids, a failure's id is found by trying the error codes providers use (every
  whole number below a million, SMPP's three hex digits): a second or so, and only when a
  claim of that message hash is not one of the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from tasks.events import FAILURE_STATUSES, STATUSES
from tasks.upstream.events import event_id as receipt_event_id
from tasks.upstream.receipts import Receipt
from worker.delivery.settle import field_of

CODES_BELOW = 1_000_000  # whole-number error codes tried (Twilio 5 digits, WhatsApp 6)
_HEX = "0123456789abcdefABCDEF"


@dataclass(frozen=True)
class Wanted:
    """How a trace recognises its events in each place."""

    label: str
    """What was asked, for messages: an event id, `SOURCE PROVIDER_ID`, `TARGET MESSAGE_ID`."""
    ids: frozenset[str]
    """Event ids known before looking: claims are read (or scanned for) under these."""
    is_event: Callable[[Any], bool]
    """An event held whole: is it one of those wanted?"""
    is_receipt: Callable[[str, Receipt], bool]
    """A provider's receipt waiting for its record (its source): is it one of those wanted?"""
    is_claim: Callable[[list[str]], set[str]] = field(default=lambda ids: set())
    """Which of a message hash's claimed event ids, beyond `ids`, are wanted."""
    known: tuple[tuple[str, str], ...] = ()
    """(target, message id) pairs that hold its claims, when known before looking."""
    single: bool = True
    """One event id: sightings need not say which event they are."""


def by_event_id(eid: str, hints: Iterable[tuple[str, str]] = ()) -> Wanted:
    return Wanted(
        eid,
        frozenset({eid}),
        lambda event: field_of(event, "event_id") == eid,
        lambda source, receipt: receipt_event_id(source, receipt) == eid,
        known=tuple(hints),
    )


def by_message(target: str, message_id: str) -> Wanted:
    """Every event of one target message id: its claims, and the events naming it."""

    def is_event(event: Any) -> bool:
        ids = event.get("message_ids") if isinstance(event, dict) else None
        return field_of(event, "target") == target and isinstance(ids, list) and message_id in ids

    return Wanted(
        f"{target} {message_id}",
        frozenset(),
        is_event,
        lambda source, receipt: False,  # a waiting receipt has no target message yet
        is_claim=set,
        known=((target, message_id),),
        single=False,
    )


def by_receipt(source: str, pmid: str, known: Iterable[tuple[str, str]] = ()) -> Wanted:
    """Every event the ingress made of provider message `pmid` of `source`."""
    quick = {_derive(source, pmid, status, "") for status in STATUSES}
    quick |= {_derive(source, pmid, status, "0") for status in FAILURE_STATUSES}

    def is_event(event: Any) -> bool:
        if not isinstance(event, dict):
            return False
        if isinstance(event.get("receipt"), dict):  # an `uncorrelated` dead letter's item
            receipt = event["receipt"]
            return event.get("source") == source and receipt.get("provider_message_id") == pmid
        error = event.get("error")
        code = error.get("code", "") if isinstance(error, dict) else ""
        codes = {"", str(code)}  # no code given: 0 in the event, "" in its id
        status = str(event.get("status"))
        return field_of(event, "event_id") in {_derive(source, pmid, status, c) for c in codes}

    return Wanted(
        f"{source} {pmid}",
        frozenset(quick),
        is_event,
        lambda src, receipt: src == source and receipt.provider_message_id == pmid,
        is_claim=lambda ids: _failures_among(source, pmid, ids),
        known=tuple(known),
        single=False,
    )


def _derive(source: str, pmid: str, status: str, code: str) -> str:
    """The id the ingress gives the event of (source, pmid, status, code): see
    `tasks.upstream.events.event_id`, whose formula this must follow."""
    key = "\x1f".join((source, pmid, status, code))
    return "rcpt-" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:40]


def _failures_among(source: str, pmid: str, ids: list[str]) -> set[str]:
    """Which of `ids` are failures of (source, pmid), by trying the error codes providers use."""
    left = {i for i in ids if i.startswith("rcpt-")}
    found: set[str] = set()
    if not left:
        return found
    for status in sorted(FAILURE_STATUSES):
        base = hashlib.sha256("\x1f".join((source, pmid, status, "")).encode("utf-8", "replace"))
        for code in _codes():
            digest = base.copy()
            digest.update(code.encode())
            candidate = "rcpt-" + digest.hexdigest()[:40]
            if candidate in left:
                found.add(candidate)
                left.discard(candidate)
                if not left:
                    return found
    return found


def _codes() -> Iterator[str]:
    """Error codes as the ingress writes them into ids: whole numbers without leading zeros,
    else the provider's text (SMPP's hex digits, as sent)."""
    yield from (str(n) for n in range(CODES_BELOW))
    for digits in product(_HEX, repeat=3):
        text = "".join(digits)
        if not text.isdigit():
            yield text
