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

# KEYS: inbox, waiting items hash, waiting zset. ARGV: sources, plans, inbox bound, now (ms),
# stale (s); per source: counts key, rate key, rate, burst, its waiting set, its max_waiting;
# per plan a header "source:cost:ignored:checks:events:items" (source a 1-based index), then
# its record keys to check, its events and its waiting items (an item: id, JSON, next check,
# index key, index ttl, deadline). Returns one text, a word per plan: "ok", or its outcome and
# retry-after (s), e.g. "rate:3". One header argument a plan, one set of arguments a source and
# one text back keep the call small: a group commit is mostly many one-receipt callbacks of a
# few sources.
TAKE = """
local nsources, plans, bound = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local stale = now / 1000 - tonumber(ARGV[5])
local depth = redis.call('LLEN', KEYS[1])
local sources, out, i = {}, {}, 6
for s = 1, nsources do
  sources[s] = {ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4],
    tonumber(ARGV[i + 5])}
  i = i + 6
end
for _ = 1, plans do
  local h = {}
  for n in string.gmatch(ARGV[i], '%d+') do h[#h + 1] = tonumber(n) end
  local src, cost, ignored, nu, ne, ni = sources[h[1]], h[2], h[3], h[4], h[5], h[6]
  local rate, burst, mine = src[3], src[4], src[5]
  local u = i + 1
  local e = u + nu
  local w = e + ne
  i = w + 6 * ni
  local code, after = 'ok', 0
  for k = u, e - 1 do
    if redis.call('EXISTS', ARGV[k]) == 1 then code = 'replan' break end
  end
  if not src.tokens then
    local v = redis.call('HMGET', src[2], 'tokens', 'at')
    src.tokens, src.at = tonumber(v[1]) or burst, tonumber(v[2]) or now
  end
  local tokens = math.min(burst, src.tokens + math.max(0, now - src.at) * rate / 1000)
  src.tokens, src.at = tokens, math.max(now, src.at)
  if code == 'ok' and tokens < cost then
    code, after = 'rate', math.ceil((cost - tokens) / rate)
  end
  if code == 'ok' and ni > 0 then
    redis.call('ZREMRANGEBYSCORE', mine, '-inf', stale)
    if redis.call('ZCARD', mine) + ni > src[6] then
      local first = redis.call('ZRANGE', mine, 0, 0, 'WITHSCORES')
      code, after = 'waiting', math.ceil((tonumber(first[2]) or 0) - now / 1000)
    end
  end
  if code == 'ok' and ne > 0 and depth + ne > bound then code = 'full' end
  if code == 'ok' then
    src.tokens = tokens - cost
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
    src.accepted = (src.accepted or 0) + ne
    src.waiting = (src.waiting or 0) + ni
    src.ignored = (src.ignored or 0) + ignored
  end
  out[#out + 1] = code == 'ok' and code or code .. ':' .. math.max(after, 1)
end
for _, src in ipairs(sources) do
  if src.tokens then
    redis.call('HSET', src[2], 'tokens', tostring(src.tokens), 'at', tostring(src.at))
    redis.call('PEXPIRE', src[2], math.ceil(src[4] / src[3] * 1000) + 1000)
  end
  for _, outcome in ipairs({'accepted', 'waiting', 'ignored'}) do
    if (src[outcome] or 0) > 0 then redis.call('HINCRBY', src[1], outcome, src[outcome]) end
  end
end
return table.concat(out, ' ')
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
    lookups: list[str] = field(default_factory=list)
    """Provider message ids whose record decides where their receipt goes, when the plan was
    made without reading records: the caller reads them and plans again."""


def take_args(batch: list[tuple[Source, Plan]], bound: int, now: float) -> list[Any]:
    """TAKE's arguments for the plans of one group commit, at `now` (epoch seconds)."""
    index: dict[str, int] = {}
    head: list[Any] = []
    for source, _ in batch:
        if source.name not in index:
            index[source.name] = len(index) + 1
            head += [key("receipts", source.name), key("quota", "rate", source.name)]
            head += [source.receipts_per_second, source.burst, waiting_key(source.name)]
            head.append(source.max_waiting)
    args: list[Any] = [len(index), len(batch), bound, int(now * 1000), STALE, *head]
    for source, plan in batch:
        counts = (plan.cost, plan.ignored, len(plan.unchecked), len(plan.events))
        args.append(f"{index[source.name]}:{':'.join(map(str, counts))}:{len(plan.waiting)}")
        args += plan.unchecked
        args += plan.events
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


def outcomes(reply: Any) -> list[tuple[str, int]]:
    """TAKE's reply as (outcome, retry-after seconds) per plan."""
    found = []
    for word in text_of(reply).split(" "):
        outcome, _, after = word.partition(":")
        found.append((outcome, int(after or 1)))
    return found
