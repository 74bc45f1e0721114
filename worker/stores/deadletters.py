"""The dead-letter store: events that will not be delivered, each with its reason, kept whole.

Two Redis structures: a hash id -> record (JSON) and a sorted set id -> failed_at, which orders
listings and lets the store stay bounded by size and age.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

import redis

from worker.settings import get_settings
from worker.stores.connection import get_redis, key, text_of
from worker.stores.ledger import Done

FORMAT = 2
"""The version of a dead letter's record, written in it as "v"; a CLI or worker that meets a
newer one shows and counts it but leaves replaying it to a relay that knows its format.
2: `envelope`, the id of the envelope that ended so (whose claims a replay clears); a relay
of format 1 would replay it without clearing them, and the replay would count as a
duplicate of the dead letter itself."""
Reason = Literal["invalid", "unroutable", "rejected", "exhausted", "uncorrelated"]
REASONS: tuple[Reason, ...] = ("invalid", "unroutable", "rejected", "exhausted", "uncorrelated")

# Adds the record, then drops what is too old and, past the size bound, the oldest.
_ADD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local n = redis.call('ZCARD', KEYS[2]) - #old - tonumber(ARGV[5])
if n > 0 then
  local extra = redis.call('ZRANGE', KEYS[2], #old, #old + n - 1)
  for _, id in ipairs(extra) do table.insert(old, id) end
end
for _, id in ipairs(old) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return #old
"""


@dataclass(slots=True)
class DeadLetter:
    """One event that was given up on, with everything needed to understand and replay it."""

    reason: Reason
    error: str
    event: Any
    attempts: int = 0
    event_id: str | None = None
    target: str | None = None
    status_code: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    failed_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    first_seen: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    envelope: str | None = None
    """The id of the envelope that ended as this dead letter: its claims of the event's
    message ids, if any are left, are what a replay clears (format 2)."""
    v: int = FORMAT

    def claims(self) -> Done | None:
        """What stands in a replay's way: the claims its envelope may still hold of the
        event's message ids (for a record of format 1, which does not name its envelope, any
        claim still in an envelope's hands: never a done mark, so a delivered event stays
        refused)."""
        event = self.event if isinstance(self.event, dict) else {}
        target, event_id = event.get("target"), event.get("event_id")
        mids = event.get("message_ids")
        if not (isinstance(target, str) and isinstance(event_id, str) and isinstance(mids, list)):
            return None
        ids = tuple(m for m in mids if isinstance(m, str))
        if self.envelope:
            return Done(target, event_id, ids, owner=self.envelope, mode="forget")
        return Done(target, event_id, ids, mode="any")

    @property
    def newer(self) -> bool:
        """Written by a newer relay version: its fields may not mean what this one thinks."""
        return not isinstance(self.v, int) or self.v > FORMAT

    def to_json(self) -> str:
        """The record as JSON. ASCII-escaped, so that text that is not valid Unicode (a lone
        surrogate a producer sent as "\\ud800") is stored, and read back, exactly."""
        try:
            return json.dumps(asdict(self), separators=(",", ":"))
        except (ValueError, TypeError, RecursionError) as exc:  # kept as words, not lost
            record = {f.name: getattr(self, f.name) for f in fields(self)}
            record["event"] = f"(the event could not be stored as JSON: {type(exc).__name__})"
            record["history"] = []
            return json.dumps(record, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, text: str) -> DeadLetter:
        """The record; keys it does not know (a newer version's) are left out, and a record
        without "v" is of format 1."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class DeadLetterStore:
    """Add, list, fetch, and remove dead letters in Redis."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self.items = key("dlq", "items")
        self.index = key("dlq", "index")
        self._add = self.redis.register_script(_ADD)

    def add(self, letter: DeadLetter, pipe: redis.Redis | None = None) -> DeadLetter:
        """Store `letter` (or queue that on `pipe`); adding it again changes nothing."""
        settings = get_settings()
        now = time.time()
        self._add(
            keys=[self.items, self.index],
            args=[
                letter.id,
                letter.to_json(),
                now,
                now - settings.dlq_max_age,
                settings.dlq_max_size,
            ],
            client=pipe or self.redis,
        )
        return letter

    def get(self, letter_id: str) -> DeadLetter | None:
        text = self.redis.hget(self.items, letter_id)
        return DeadLetter.from_json(text_of(text)) if text else None

    def iter(self, target: str | None = None, reason: str | None = None) -> Iterator[DeadLetter]:
        """Dead letters, oldest first, optionally only one target's or one reason's."""
        ids = [text_of(i) for i in self.redis.zrange(self.index, 0, -1)]
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            for text in self.redis.hmget(self.items, batch):
                if not text:
                    continue
                letter = DeadLetter.from_json(text_of(text))
                if (target is None or letter.target == target) and (
                    reason is None or letter.reason == reason
                ):
                    yield letter

    def remove(self, letter_ids: list[str]) -> int:
        if not letter_ids:
            return 0
        pipe = self.redis.pipeline()
        pipe.hdel(self.items, *letter_ids)
        pipe.zrem(self.index, *letter_ids)
        removed, _ = pipe.execute()
        return int(removed)

    def count(self) -> int:
        return int(self.redis.zcard(self.index))
