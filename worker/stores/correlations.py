"""Correlation records and the waiting room, shared by the ingress, the workers and the CLI.

- A record (`corr:<source>:<provider message id>`, JSON of a `Correlation` whose target is
  resolved) says where the receipts of one provider message go; it expires after the source's
  `correlation_ttl`.
- A receipt that arrives before its record waits: an item in the hash `waiting:items`, its id
  in the sorted set `waiting` scored by its next check, and in `waiting:for:<source>:<id>` so a
  registration finds it at once. No delivery attempt is spent while it waits. A release pushes
  the canonical event onto the inbox exactly as producers push; the item's HDEL decides who
  releases it when the registration and the pump race.

Every write of one request goes in one pipeline (MULTI/EXEC), for the sync client and the
ingress's asyncio one alike: the helpers below only queue commands on a pipeline.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from tasks.upstream.correlation import Correlation, correlation_of, reference_of
from tasks.upstream.events import make_event
from tasks.upstream.receipts import Receipt
from worker.sources import Source
from worker.stores.connection import get_redis, key, text_of

FIRST_CHECK = 2.0  # seconds before the pump first looks again (covers a racing registration)
RECHECK = 15.0  # seconds between later looks; a registration releases at once anyway
RECEIPT_OUTCOMES = ("accepted", "waiting", "ignored", "refused", "invalid", "uncorrelated")

# KEYS: items hash, waiting zset, inbox; ARGV: (id, event, source's counts key) triples.
RELEASE = """
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZREM', KEYS[2], ARGV[i])
    redis.call('RPUSH', KEYS[3], ARGV[i + 1])
    redis.call('HINCRBY', ARGV[i + 2], 'accepted', 1)
    n = n + 1
  end
end
return n
"""


# The common case in one command, for the requests of a group commit: their counts, then their
# events onto the inbox, all or nothing: -1 (nothing written) when the events would take the
# inbox past its bound (RELAY_INBOX_MAX). KEYS: inbox; ARGV: k, the bound, then k (counts
# key, accepted, ignored), then the events.
ACCEPT = """
local k = tonumber(ARGV[1])
local first = 3 + 3 * k
if #ARGV >= first and redis.call('LLEN', KEYS[1]) + #ARGV - first + 1 > tonumber(ARGV[2]) then
  return -1
end
for i = 0, k - 1 do
  local counts = ARGV[3 + 3 * i]
  local accepted, ignored = tonumber(ARGV[4 + 3 * i]), tonumber(ARGV[5 + 3 * i])
  if accepted > 0 then redis.call('HINCRBY', counts, 'accepted', accepted) end
  if ignored > 0 then redis.call('HINCRBY', counts, 'ignored', ignored) end
end
for i = first, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return #ARGV - first + 1
"""


def accept_args(plans: list[tuple[str, Plan]], bound: int) -> list[str | int]:
    """ACCEPT's arguments for (source, plan) pairs without waiting receipts."""
    counts: dict[str, list[int]] = {}
    for source, plan in plans:
        tally = counts.setdefault(source, [0, 0])
        tally[0] += len(plan.events)
        tally[1] += plan.ignored
    args: list[str | int] = [len(counts), bound]
    for source, (accepted, ignored) in counts.items():
        args += [key("receipts", source), accepted, ignored]
    return args + [event for _, plan in plans for event in plan.events]


def record_key(source: str, provider_message_id: str) -> str:
    return key("corr", source, provider_message_id)


def waiting_for_key(source: str, provider_message_id: str) -> str:
    return key("waiting", "for", source, provider_message_id)


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def count(pipe: Any, source: str, outcome: str, amount: int = 1) -> None:
    """Queue a receipt count (`relay status`, by source and outcome)."""
    if amount:  # the key of Counters(family="receipts"), queued on any pipeline
        pipe.hincrby(key("receipts", source), outcome, amount)


@dataclass
class Plan:
    """What one request's receipts come to: events for the inbox, items for the waiting room."""

    events: list[str] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0

    def queue(self, pipe: Any, source: str, now: float) -> None:
        """Queue every write of the plan, and its counts, on `pipe`."""
        if self.events:
            pipe.rpush(key("inbox"), *self.events)
        for item in self.waiting:
            park(pipe, item, now)
        count(pipe, source, "accepted", len(self.events))
        count(pipe, source, "waiting", len(self.waiting))
        count(pipe, source, "ignored", self.ignored)


def usable(correlation: Correlation | None, source: Source) -> Correlation | None:
    """The correlation with the source's default target, if it then names a target."""
    resolved = correlation.with_target(source.target) if correlation else None
    return resolved if resolved is not None and resolved.target else None


def needing_records(source: Source, receipts: list[Receipt]) -> list[Receipt]:
    """The receipts with a canonical status whose echoed reference does not say where to go."""
    return [
        r
        for r in receipts
        if r.status is not None and usable(reference_of(r.reference), source) is None
    ]


def plan(
    source: Source, receipts: list[Receipt], records: dict[str, Any], received_ms: int
) -> Plan:
    """Receipts made into events (by echoed reference or record) or items to wait; `records`
    maps provider message ids to stored records (JSON text or None)."""
    result = Plan()
    for receipt in receipts:
        if receipt.status is None:
            result.ignored += 1
            continue
        correlation = usable(reference_of(receipt.reference), source)
        stored = records.get(receipt.provider_message_id)
        if correlation is None and stored:
            correlation = correlation_of(json.loads(text_of(stored)))
        if correlation is not None:
            result.events.append(
                compact(make_event(source.name, receipt, correlation, received_ms))
            )
        else:
            result.waiting.append(waiting_item(source, receipt, received_ms))
    return result


def waiting_item(source: Source, receipt: Receipt, received_ms: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "source": source.name,
        "receipt": receipt.to_dict(),
        "received_ms": received_ms,
        "deadline": received_ms / 1000 + source.correlation_wait,
    }


def park(pipe: Any, item: dict[str, Any], now: float) -> None:
    """Queue the writes that put a receipt in the waiting room."""
    receipt = item["receipt"]
    index = waiting_for_key(item["source"], receipt["provider_message_id"])
    pipe.hset(key("waiting", "items"), item["id"], compact(item))
    pipe.zadd(key("waiting"), {item["id"]: min(now + FIRST_CHECK, item["deadline"])})
    pipe.sadd(index, item["id"])
    pipe.expire(index, max(1, int(item["deadline"] - now + 3600)))


def release_args(item: dict[str, Any], stored: Any) -> list[str]:
    """RELEASE's arguments for a waiting item whose record is `stored`."""
    return [item["id"], event_of(item, stored), key("receipts", item["source"])]


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
        """Run RELEASE on (id, event, counts key) triples; return how many went."""
        if not args:
            return 0
        keys = [key("waiting", "items"), key("waiting"), key("inbox")]
        return int(self._release(keys=keys, args=args))

    def lookup(self, source: str, provider_message_id: str) -> Correlation | None:
        stored = self.redis.get(record_key(source, provider_message_id))
        return correlation_of(json.loads(text_of(stored))) if stored else None

    def resubmit(self, item: dict[str, Any], wait: float) -> bool:
        """Put a receipt back through correlation (a replayed `uncorrelated` dead letter):
        to the inbox if its record exists now, else to wait `wait` seconds more. True if it
        went to the inbox."""
        now = time.time()
        receipt = item["receipt"]
        stored = self.redis.get(record_key(item["source"], receipt["provider_message_id"]))
        pipe = self.redis.pipeline(transaction=True)
        if stored:
            pipe.rpush(key("inbox"), event_of(item, stored))
            count(pipe, item["source"], "accepted")
        else:
            park(pipe, {**item, "id": uuid.uuid4().hex, "deadline": now + wait}, now)
            count(pipe, item["source"], "waiting")
        pipe.execute()
        return bool(stored)

    def waiting(self) -> int:
        return int(self.redis.zcard(key("waiting")))
