"""The dead-letter store: events that will not be delivered, each with its reason, kept whole.

Two Redis structures: a hash id -> record (JSON) and a sorted set id -> failed_at, which orders
listings and lets the store stay bounded by size and age. The shared store holds what the
workers and `relay push` give up on (bounded by RELAY_DLQ_MAX_SIZE); each ingress source has a
store of its own for what its callbacks make (unreadable bodies, forbidden references,
future-dated and uncorrelated receipts), bounded by the source's `max_dead_letters`, so that
what one source sends never evicts anyone else's dead letter. Reading, replaying and purging
see every store as one.
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
from worker.stores.connection import get_redis, key, run_script, text_of
from worker.stores.ledger import Done

FORMAT = 2
"""The version of a dead letter's record, written in it as "v"; a CLI or worker that meets a
newer one shows and counts it but leaves replaying it to a relay that knows its format.
2: `envelope`, the id of the envelope that ended so (whose claims a replay clears); a relay
of format 1 would replay it without clearing them, and the replay would count as a
duplicate of the dead letter itself."""
Reason = Literal["invalid", "unroutable", "rejected", "exhausted", "uncorrelated", "forbidden"]
REASONS: tuple[Reason, ...] = (
    "invalid",
    "unroutable",
    "rejected",
    "exhausted",
    "uncorrelated",
    "forbidden",
)
BATCH = 500  # records per HMGET when listing

# Adds the records, then drops what is too old and, past the size bound, the oldest. KEYS:
# items, index, the registry of sources' stores; ARGV: now, cutoff, bound, the source ('' for
# the shared store), then (id, record) pairs.
_ADD = """
if ARGV[4] ~= '' then redis.call('SADD', KEYS[3], ARGV[4]) end
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local n = redis.call('ZCARD', KEYS[2]) - #old - tonumber(ARGV[3])
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
        surrogate a producer sent as "\\ud800") is stored, and read back, exactly. While
        0.1.0's CLI may read the store (RELAY_COMPAT_0_1=on) it is a record of format 1, the
        only keys 0.1.0 knows (it refuses a record with any other): no `v`, no `envelope` (a
        replay then clears any claim still held, as for every record of format 1)."""
        old = get_settings().compat_0_1 == "on" and not self.newer
        try:
            return json.dumps(
                _format_1(asdict(self)) if old else asdict(self), separators=(",", ":")
            )
        except (ValueError, TypeError, RecursionError) as exc:  # kept as words, not lost
            record = _format_1(self._fields()) if old else self._fields()
            record["event"] = f"(the event could not be stored as JSON: {type(exc).__name__})"
            record["history"] = []
            return json.dumps(record, separators=(",", ":"), default=str)

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, text: str) -> DeadLetter:
        """The record; keys it does not know (a newer version's) are left out, and a record
        without "v" is of format 1."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _format_1(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what format 2 added."""
    return {k: v for k, v in record.items() if k not in ("v", "envelope")}


class DeadLetterStore:
    """Add, list, fetch, and remove dead letters in Redis: the shared store and the sources'."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self.items = key("dlq", "items")
        self.index = key("dlq", "index")
        self.registry = key("dlq", "sources")
        self._add = self.redis.register_script(_ADD)

    def add(self, letter: DeadLetter, pipe: redis.Redis | None = None) -> DeadLetter:
        """Keep `letter` in the shared store (RELAY_DLQ_MAX_SIZE), or queue that on `pipe`;
        adding it again changes nothing."""
        self.add_all([letter], pipe=pipe)
        return letter

    def add_all(
        self,
        letters: list[DeadLetter],
        source: str | None = None,
        bound: int | None = None,
        pipe: redis.Redis | None = None,
    ) -> None:
        """Keep `letters` in one round trip: in `source`'s own store, bounded by `bound`
        (its `max_dead_letters`), or in the shared one (or queue that on `pipe`)."""
        if not letters:
            return
        settings = get_settings()
        now = time.time()
        items, index = self._keys(source)
        args: list[str | float | int] = [now, now - settings.dlq_max_age]
        args += [settings.dlq_max_size if bound is None else bound, source or ""]
        for letter in letters:
            args += [letter.id, letter.to_json()]
        run_script(self._add, [items, index, self.registry], args, pipe)

    def _keys(self, source: str | None) -> tuple[str, str]:
        if source is None:
            return self.items, self.index
        return key("dlq", "source", source, "items"), key("dlq", "source", source, "index")

    def stores(self) -> dict[str | None, tuple[str, str]]:
        """Every store's (items, index) keys: None the shared one, then each source's."""
        names = sorted(text_of(n) for n in self.redis.smembers(self.registry))
        return {None: self._keys(None), **{n: self._keys(n) for n in names}}

    def get(self, letter_id: str) -> DeadLetter | None:
        pipe = self.redis.pipeline(transaction=False)
        for items, _ in self.stores().values():
            pipe.hget(items, letter_id)
        text = next((t for t in pipe.execute() if t), None)
        return DeadLetter.from_json(text_of(text)) if text else None

    def iter(self, target: str | None = None, reason: str | None = None) -> Iterator[DeadLetter]:
        """Dead letters of every store, oldest first, optionally one target's or one reason's."""
        pipe = self.redis.pipeline(transaction=False)
        stores = list(self.stores().values())
        for _, index in stores:
            pipe.zrange(index, 0, -1, withscores=True)
        entries = sorted(
            (score, text_of(i), items)
            for (items, _), found in zip(stores, pipe.execute(), strict=True)
            for i, score in found
        )
        for start in range(0, len(entries), BATCH):
            for text in self._texts(entries[start : start + BATCH]):
                letter = DeadLetter.from_json(text_of(text))
                if (target is None or letter.target == target) and (
                    reason is None or letter.reason == reason
                ):
                    yield letter

    def _texts(self, entries: list[tuple[float, str, str]]) -> list[Any]:
        """The records of (score, id, items key) entries, in their order (gone ones left out)."""
        by_store: dict[str, list[str]] = {}
        for _, letter_id, items in entries:
            by_store.setdefault(items, []).append(letter_id)
        pipe = self.redis.pipeline(transaction=False)
        for items, ids in by_store.items():
            pipe.hmget(items, ids)
        found = {
            (items, i): t
            for (items, ids), texts in zip(by_store.items(), pipe.execute(), strict=True)
            for i, t in zip(ids, texts, strict=True)
        }
        return [t for _, i, items in entries if (t := found[(items, i)])]

    def remove(self, letter_ids: list[str]) -> int:
        """Remove dead letters from whichever store holds them; how many went."""
        if not letter_ids:
            return 0
        pipe = self.redis.pipeline()
        for items, index in self.stores().values():
            pipe.hdel(items, *letter_ids)
            pipe.zrem(index, *letter_ids)
        return sum(int(n) for n in pipe.execute()[::2])

    def count(self) -> int:
        return sum(self.counts().values())

    def counts(self) -> dict[str | None, int]:
        """Dead letters in each store: None the shared one, then each source's."""
        stores = self.stores()
        pipe = self.redis.pipeline(transaction=False)
        for _, index in stores.values():
            pipe.zcard(index)
        return {name: int(n) for name, n in zip(stores, pipe.execute(), strict=True)}
