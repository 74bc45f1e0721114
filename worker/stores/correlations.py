"""Correlation records and the waiting room, shared by the ingress, the workers and the CLI.

- A record (`corr:<source>:<provider message id>`, JSON of a `Correlation` whose target is
  resolved) says where the receipts of one provider message go; it expires after the source's
  `correlation_ttl`. A record wins over an echoed reference (`worker.stores.planning`).
- A receipt that arrives before its record waits: an item in the hash `waiting:items`, its id
  in the sorted set `waiting` scored by its next check, in `waiting:for:<source>:<id>` so a
  registration finds it at once, and in `waiting:of:<source>` scored by its deadline (what the
  source's `max_waiting` counts). No delivery attempt is spent while it waits. A release
  pushes the canonical event onto the inbox exactly as producers push, within the inbox's
  bound (RELAY_INBOX_MAX: past it the receipt keeps waiting and the pump tries again); the
  item's HDEL decides who releases it when the registration and the pump race.

The ingress's own writes (events, waiting items, quotas) are one script, `worker.stores.take`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import redis

from tasks.upstream.correlation import Correlation, correlation_of
from tasks.upstream.events import make_event
from tasks.upstream.receipts import Receipt
from worker.settings import get_settings
from worker.sources import Source
from worker.stores.bounds import InboxFull
from worker.stores.connection import get_redis, key, text_of

FIRST_CHECK = 2.0  # seconds before the pump first looks again (covers a racing registration)
RECHECK = 15.0  # seconds between later looks; a registration releases at once anyway
RECEIPT_OUTCOMES = (
    "accepted",
    "waiting",
    "ignored",
    "refused",
    "invalid",
    "uncorrelated",
    "forbidden",
)

# KEYS: items hash, waiting zset, inbox; ARGV: the inbox's bound, then (id, event, source's
# counts key, source's waiting set) quadruples. Stops at the bound: the rest keeps waiting.
RELEASE = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[3])
local n = 0
for i = 2, #ARGV, 4 do
  if room <= 0 then break end
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZREM', KEYS[2], ARGV[i])
    redis.call('ZREM', ARGV[i + 3], ARGV[i])
    redis.call('RPUSH', KEYS[3], ARGV[i + 1])
    redis.call('HINCRBY', ARGV[i + 2], 'accepted', 1)
    n = n + 1
    room = room - 1
  end
end
return n
"""

# KEYS: inbox, source's counts; ARGV: the inbox's bound, one event. 0 (nothing done) when full.
PUSH_ONE = """
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'accepted', 1)
return 1
"""


def record_key(source: str, provider_message_id: str) -> str:
    return key("corr", source, provider_message_id)


def waiting_for_key(source: str, provider_message_id: str) -> str:
    return key("waiting", "for", source, provider_message_id)


def waiting_key(source: str) -> str:
    """The sorted set of one source's waiting items (id -> deadline): its max_waiting."""
    return key("waiting", "of", source)


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact(value: Any) -> str:
    """JSON without spaces (one encoder, made once: json.dumps with options makes one a call,
    which was a tenth of a callback's planning)."""
    return _COMPACT.encode(value)


def count(pipe: Any, source: str, outcome: str, amount: int = 1) -> None:
    """Queue a receipt count (`relay status`, by source and outcome)."""
    if amount:  # the key of Counters(family="receipts"), queued on any pipeline
        pipe.hincrby(key("receipts", source), outcome, amount)


def waiting_item(source: Source, receipt: Receipt, received_ms: int) -> dict[str, Any]:
    """A receipt as it waits for its record (and as its source's dead letters keep it):
    `keep` is the source's max_dead_letters, for the pump that may make it one."""
    return {
        "id": uuid.uuid4().hex,
        "source": source.name,
        "receipt": receipt.to_dict(),
        "received_ms": received_ms,
        "deadline": received_ms / 1000 + source.correlation_wait,
        "keep": source.max_dead_letters,
    }


def park(pipe: Any, item: dict[str, Any], now: float) -> None:
    """Queue the writes that put a receipt in the waiting room."""
    receipt = item["receipt"]
    index = waiting_for_key(item["source"], receipt["provider_message_id"])
    pipe.hset(key("waiting", "items"), item["id"], compact(item))
    pipe.zadd(key("waiting"), {item["id"]: min(now + FIRST_CHECK, item["deadline"])})
    pipe.sadd(index, item["id"])
    pipe.expire(index, max(1, int(item["deadline"] - now + 3600)))
    pipe.zadd(waiting_key(item["source"]), {item["id"]: item["deadline"]})


def release_args(item: dict[str, Any], stored: Any) -> list[str]:
    """RELEASE's arguments for a waiting item whose record is `stored`."""
    source = item["source"]
    return [item["id"], event_of(item, stored), key("receipts", source), waiting_key(source)]


def event_of(item: dict[str, Any], stored: Any) -> str:
    """The inbox text for a waiting item whose record is now known."""
    correlation = correlation_of(json.loads(text_of(stored)))
    receipt = Receipt.from_dict(item["receipt"])
    return compact(make_event(item["source"], receipt, correlation, int(item["received_ms"])))


class Correlations:
    """Records and the waiting room, for the CLI, the Python API and the workers (sync)."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self._release = self.redis.register_script(RELEASE)
        self._push_one = self.redis.register_script(PUSH_ONE)

    def register(self, records: Iterable[tuple[str, str, Correlation, float]]) -> int:
        """Store records (source, provider message id, resolved correlation, ttl seconds) and
        release the receipts waiting for them at once; return how many were released."""
        pipe = self.redis.pipeline(transaction=True)
        for source, pmid, correlation, ttl in records:
            pipe.set(record_key(source, pmid), compact(correlation.to_dict()), ex=max(1, int(ttl)))
            pipe.smembers(waiting_for_key(source, pmid))
        replies = pipe.execute()
        ids = [text_of(i) for members in replies[1::2] for i in members]
        return self.release_ids(ids)

    def with_records(self, ids: list[str]) -> list[tuple[dict[str, Any], Any]]:
        """The waiting items `ids` still waiting, each with its record (None: none yet)."""
        texts = self.redis.hmget(key("waiting", "items"), ids) if ids else []
        items = [json.loads(text_of(t)) for t in texts if t]
        if not items:
            return []
        keys = [record_key(i["source"], i["receipt"]["provider_message_id"]) for i in items]
        return list(zip(items, self.redis.mget(keys), strict=True))

    def release_ids(self, ids: list[str]) -> int:
        """Release the waiting items `ids` whose records exist; return how many went."""
        found = self.with_records(ids)
        return self.release(
            [a for item, record in found if record for a in release_args(item, record)]
        )

    def release(self, args: list[str]) -> int:
        """Run RELEASE on its quadruples; return how many went (the rest wait: inbox full)."""
        if not args:
            return 0
        keys = [key("waiting", "items"), key("waiting"), key("inbox")]
        return int(self._release(keys=keys, args=[get_settings().inbox_max, *args]))

    def lookup(self, source: str, provider_message_id: str) -> Correlation | None:
        stored = self.redis.get(record_key(source, provider_message_id))
        return correlation_of(json.loads(text_of(stored))) if stored else None

    def resubmit(self, item: dict[str, Any], wait: float) -> bool:
        """Put a receipt back through correlation (a replayed `uncorrelated` or `forbidden`
        dead letter): to the inbox if its record exists now (`InboxFull`, nothing done, past
        RELAY_INBOX_MAX), else to wait `wait` seconds more. True if it went to the inbox."""
        now = time.time()
        receipt = item["receipt"]
        stored = self.redis.get(record_key(item["source"], receipt["provider_message_id"]))
        if stored:
            bound = get_settings().inbox_max
            keys = [key("inbox"), key("receipts", item["source"])]
            if not int(self._push_one(keys=keys, args=[bound, event_of(item, stored)])):
                raise InboxFull(0, bound)
            return True
        pipe = self.redis.pipeline(transaction=True)
        park(pipe, {**item, "id": uuid.uuid4().hex, "deadline": now + wait}, now)
        count(pipe, item["source"], "waiting")
        pipe.execute()
        return False

    def waiting(self) -> int:
        return int(self.redis.zcard(key("waiting")))

    def waiting_by_source(self, sources: Iterable[str]) -> dict[str, int]:
        """Receipts waiting for a record, by source (what each one's max_waiting bounds)."""
        names = list(sources)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.zcard(waiting_key(name))
        return {name: int(n) for name, n in zip(names, pipe.execute(), strict=True)}
