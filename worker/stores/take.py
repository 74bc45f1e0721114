"""The ingress's write: the plans of the requests in one group commit, each checked and stored
in one script call (one round trip for all of them).

For each request, in order, the script checks that no record exists for the receipts it routes
by an echoed reference (records win: else it answers "replan"), the source's quotas (receipts a
second, a token bucket in `quota:rate:<source>`; receipts waiting for a record, the sorted set
`waiting:of:<source>`), and the inbox's bound (RELAY_INBOX_MAX, for events); then writes its
events, its waiting receipts and its counts, or nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.sources import Source
from worker.stores.connection import key, text_of
from worker.stores.correlations import FIRST_CHECK, compact, waiting_for_key, waiting_key
from worker.stores.deadletters import DeadLetter

WRITTEN, REPLAN, RATE, WAITING, FULL = "ok", "replan", "rate", "waiting", "full"
STALE = 3600  # seconds past its deadline after which an item no longer counts as waiting

# KEYS: inbox, waiting items hash, waiting zset. ARGV: plans, inbox bound, now (ms), stale
# (s); per plan: counts key, rate key, rate, burst, cost, its waiting set, its max_waiting,
# ignored, then how many record keys to check, events and waiting items, then those (an item:
# id, JSON, next check, index key, index ttl, deadline). Returns outcome, retry-after per plan.
TAKE = """
local plans, bound, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local stale = now / 1000 - tonumber(ARGV[4])
local depth = redis.call('LLEN', KEYS[1])
local buckets, out, i = {}, {}, 5
for _ = 1, plans do
  local counts, ratekey = ARGV[i], ARGV[i + 1]
  local rate, burst, cost = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local mine, most, ignored = ARGV[i + 5], tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
  local nu, ne, ni = tonumber(ARGV[i + 8]), tonumber(ARGV[i + 9]), tonumber(ARGV[i + 10])
  local u = i + 11
  local e = u + nu
  local w = e + ne
  i = w + 6 * ni
  local code, after = 'ok', 0
  for k = u, e - 1 do
    if redis.call('EXISTS', ARGV[k]) == 1 then code = 'replan' break end
  end
  local b = buckets[ratekey]
  if not b then
    local v = redis.call('HMGET', ratekey, 'tokens', 'at')
    b = {tonumber(v[1]) or burst, tonumber(v[2]) or now, rate, burst}
    buckets[ratekey] = b
  end
  local tokens = math.min(burst, b[1] + math.max(0, now - b[2]) * rate / 1000)
  b[1], b[2] = tokens, math.max(now, b[2])
  if code == 'ok' and tokens < cost then
    code, after = 'rate', math.ceil((cost - tokens) / rate)
  end
  if code == 'ok' and ni > 0 then
    redis.call('ZREMRANGEBYSCORE', mine, '-inf', stale)
    if redis.call('ZCARD', mine) + ni > most then
      local first = redis.call('ZRANGE', mine, 0, 0, 'WITHSCORES')
      code, after = 'waiting', math.ceil((tonumber(first[2]) or 0) - now / 1000)
    end
  end
  if code == 'ok' and ne > 0 and depth + ne > bound then code = 'full' end
  if code == 'ok' then
    b[1] = tokens - cost
    for k = e, w - 1, 1000 do
      redis.call('RPUSH', KEYS[1], unpack(ARGV, k, math.min(k + 999, w - 1)))
    end
    depth = depth + ne
    for k = w, i - 1, 6 do
      redis.call('HSET', KEYS[2], ARGV[k], ARGV[k + 1])
      redis.call('ZADD', KEYS[3], ARGV[k + 2], ARGV[k])
      redis.call('SADD', ARGV[k + 3], ARGV[k])
      redis.call('EXPIRE', ARGV[k + 3], ARGV[k + 4])
      redis.call('ZADD', mine, ARGV[k + 5], ARGV[k])
    end
    if ne > 0 then redis.call('HINCRBY', counts, 'accepted', ne) end
    if ni > 0 then redis.call('HINCRBY', counts, 'waiting', ni) end
    if ignored > 0 then redis.call('HINCRBY', counts, 'ignored', ignored) end
  end
  out[#out + 1] = code
  out[#out + 1] = math.max(after, 1)
end
for ratekey, b in pairs(buckets) do
  redis.call('HSET', ratekey, 'tokens', tostring(b[1]), 'at', tostring(b[2]))
  redis.call('PEXPIRE', ratekey, math.ceil(b[4] / b[3] * 1000) + 1000)
end
return out
"""


@dataclass
class Plan:
    """What one request's receipts come to: events for the inbox, receipts to wait for their
    record, dead letters of the source's own, and what the events by reference rest on."""

    cost: int = 1
    """Receipts the request carried (what the source's rate quota counts), at least 1."""
    events: list[str] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    refused: list[DeadLetter] = field(default_factory=list)
    """Receipts the source may not have posted (a forbidden reference, a time in the future)."""
    ignored: int = 0
    unchecked: list[str] = field(default_factory=list)
    """Record keys of the receipts routed by reference: the write is refused if one exists."""


def take_args(batch: list[tuple[Source, Plan]], bound: int, now: float) -> list[Any]:
    """TAKE's arguments for the plans of one group commit, at `now` (epoch seconds)."""
    args: list[Any] = [len(batch), bound, int(now * 1000), STALE]
    for source, plan in batch:
        args += [key("receipts", source.name), key("quota", "rate", source.name)]
        args += [source.receipts_per_second, source.burst, plan.cost]
        args += [waiting_key(source.name), source.max_waiting, plan.ignored]
        args += [len(plan.unchecked), len(plan.events), len(plan.waiting)]
        args += plan.unchecked + plan.events
        for item in plan.waiting:
            args += item_args(item, now)
    return args


def item_args(item: dict[str, Any], now: float) -> list[Any]:
    """A waiting item as TAKE parks it: id, JSON, next check, index key and ttl, deadline."""
    receipt = item["receipt"]
    deadline = float(item["deadline"])
    return [
        item["id"],
        compact(item),
        min(now + FIRST_CHECK, deadline),
        waiting_for_key(item["source"], receipt["provider_message_id"]),
        max(1, int(deadline - now + 3600)),
        deadline,
    ]


def outcomes(reply: list[Any]) -> list[tuple[str, int]]:
    """TAKE's reply as (outcome, retry-after seconds) per plan."""
    return [(text_of(reply[n]), int(reply[n + 1])) for n in range(0, len(reply), 2)]
