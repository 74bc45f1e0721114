"""The envelope an event travels in: the event as received plus its delivery bookkeeping."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

HISTORY_LIMIT = 20  # attempts remembered per event: enough to read a story, bounded in size


@dataclass(slots=True)
class Envelope:
    """An event (exactly as received) with its attempts, age and attempt history."""

    event: Any
    attempts: int = 0
    first_seen: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    history: list[dict[str, Any]] = field(default_factory=list)
    claimed: bool = False
    """This envelope owns its event_id's idempotency claim (it is the original, not a copy)."""
    replayed: bool = False
    """Queued by an operator's replay: delivered even if the event_id was seen before."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Rebuild an envelope; anything that is not one is treated as a bare event."""
        if isinstance(data, dict) and "event" in data and "first_seen" in data:
            return cls(
                event=data["event"],
                attempts=int(data.get("attempts", 0)),
                first_seen=float(data["first_seen"]),
                id=str(data.get("id") or uuid.uuid4().hex),
                history=list(data.get("history") or [])[-HISTORY_LIMIT:],
                claimed=bool(data.get("claimed", False)),
                replayed=bool(data.get("replayed", False)),
            )
        return cls(event=data)

    def record(self, **attempt: Any) -> None:
        """Append one attempt to the history, keeping only the most recent ones."""
        self.history = [*self.history, {"at": round(time.time(), 3), **attempt}][-HISTORY_LIMIT:]

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
            self.claimed,
            self.replayed,
        )
