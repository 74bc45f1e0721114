"""The envelope an event travels in: the event as received plus its delivery bookkeeping."""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

HISTORY_LIMIT = 20  # attempts remembered per event: enough to read a story, bounded in size
FORMAT = 2
"""The version of the envelope's stored forms (Celery messages, parked retries), written in
each as "v". A release that changes them raises it; a worker that meets a newer one leaves
the item for a worker that knows it (`NewerFormat`), so old and new workers can run side by
side during a rolling upgrade. 2 (0.2.0): without 0.1.0's `claimed` and `replayed` (claims
are per message id, see `worker.stores.ledger`); an envelope without "v" is 0.1.0's, read
alike (its two flags ignored)."""


class NewerFormat(ValueError):
    """An item written by a newer relay, in a format this worker does not know."""

    def __init__(self, version: object) -> None:
        self.version = version
        super().__init__(f"written in format v{version}; this worker knows up to v{FORMAT}")


def is_newer(data: Any) -> bool:
    """Whether a stored item (a dict) says it is in a format newer than this worker knows."""
    if not isinstance(data, dict):
        return False
    version = data.get("v", FORMAT)
    return not isinstance(version, int) or isinstance(version, bool) or version > FORMAT


# The keys of an attempt the pipeline records, in order. The compact form stores such an entry
# as a bare list of its values; any other entry stays a dict.
ATTEMPT_KEYS = ("at", "attempt", "endpoint", "status", "error", "duration", "outcome")

# Where each bookkeeping field is stored in the long form (`to_dict`, Celery messages and dead
# letters) and in the compact one (`to_compact`, the retry schedule).
_BOOKKEEPING = ("attempts", "first_seen", "id", "history")
_LONG_FORM = {name: name for name in _BOOKKEEPING}
_COMPACT_FORM = dict(zip(_BOOKKEEPING, ("a", "f", "i", "h"), strict=True))


@dataclass(slots=True)
class Envelope:
    """An event (exactly as received) with its attempts, age and attempt history."""

    event: Any
    attempts: int = 0
    first_seen: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"v": FORMAT, **asdict(self)}

    def to_message(self) -> dict[str, Any]:
        """`to_dict` without the deep copy, for an envelope serialized at once and never used
        again (a published bundle's: dataclasses.asdict was 6% of a worker's CPU)."""
        return {"v": FORMAT, **{f.name: getattr(self, f.name) for f in fields(self)}}

    def to_compact(self) -> dict[str, Any]:
        """The same envelope in fewer bytes, for the retry schedule (100,000 may wait there).

        One-letter keys, defaults left out (no attempts, no history), each
        recorded attempt a bare list of values. The event stays whole under "event": it must
        come back exactly as received, and the retry pump reads its target there.
        `from_dict` reads this form and `to_dict`'s alike."""
        names = _COMPACT_FORM
        data: dict[str, Any] = {"v": FORMAT, names["id"]: self.id}
        data[names["first_seen"]] = self.first_seen
        if self.attempts:
            data[names["attempts"]] = self.attempts
        if self.history:
            data[names["history"]] = [_pack_attempt(entry) for entry in self.history]
        data["event"] = copy.deepcopy(self.event)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Rebuild an envelope from `to_dict`'s form or `to_compact`'s (an envelope without
        "v" is of format 1); anything that is not an envelope is treated as a bare event.
        Raises `NewerFormat` for an envelope of a newer format."""
        if isinstance(data, dict) and "event" in data:
            if is_newer(data):
                raise NewerFormat(data.get("v"))
            for names in (_LONG_FORM, _COMPACT_FORM):
                if names["first_seen"] in data:
                    try:
                        return cls._read(data, names)
                    except (TypeError, ValueError, OverflowError):
                        break  # not an envelope after all: the whole thing is the event
        return cls(event=data)

    @classmethod
    def _read(cls, data: dict[str, Any], names: dict[str, str]) -> Envelope:
        history = list(data.get(names["history"]) or [])[-HISTORY_LIMIT:]
        return cls(
            event=data["event"],
            attempts=int(data.get(names["attempts"], 0)),
            first_seen=float(data[names["first_seen"]]),
            id=str(data.get(names["id"]) or uuid.uuid4().hex),
            history=[_unpack_attempt(entry) for entry in history],
        )

    def record(self, **attempt: Any) -> None:
        """Append one attempt to the history, keeping only the most recent ones."""
        self.history = [*self.history, {"at": round(time.time(), 3), **attempt}][-HISTORY_LIMIT:]

    def note_deferral(self, why: str) -> None:
        """Record why the event was held back unsent (no attempt spent), so the retry
        schedule can tell; a deferral replaces the one before it, so a long wait does not
        push the real attempts out of the history."""
        entry = dict.fromkeys(ATTEMPT_KEYS)
        entry.update(at=round(time.time(), 3), attempt=self.attempts, error=why, duration=0)
        entry["outcome"] = "deferred"
        kept = (
            self.history[:-1] if self.history[-1:] and _deferral(self.history[-1]) else self.history
        )
        self.history = [*kept, entry][-HISTORY_LIMIT:]

    def narrowed(self, message_ids: list[str]) -> Envelope:
        """A copy whose event carries only `message_ids` (the ones still to deliver)."""
        event = dict(self.event) if isinstance(self.event, dict) else self.event
        if isinstance(event, dict):
            event["message_ids"] = list(message_ids)
        return Envelope(
            event,
            self.attempts,
            self.first_seen,
            self.id,
            list(self.history),
        )


def _deferral(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("outcome") == "deferred"


def _pack_attempt(entry: dict[str, Any]) -> Any:
    """A recorded attempt as a list of its values when it has exactly the usual keys."""
    if (
        isinstance(entry, dict)
        and len(entry) == len(ATTEMPT_KEYS)
        and entry.keys() >= set(ATTEMPT_KEYS)
    ):
        return copy.deepcopy([entry[k] for k in ATTEMPT_KEYS])
    return copy.deepcopy(entry)


def _unpack_attempt(entry: Any) -> Any:
    """A recorded attempt back as a dict (a list of seven values is only ever a packed one)."""
    if isinstance(entry, list) and len(entry) == len(ATTEMPT_KEYS):
        return dict(zip(ATTEMPT_KEYS, entry, strict=True))
    return entry
