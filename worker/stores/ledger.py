"""Idempotency and ordering, kept in Redis and shared by every worker.

The unit is one message id of one event: a Salesforce failure is delivered, retried and
dead-lettered message id by message id, so a claim is too.

- Claims: a hash per event (`event:<target>:<event_id>`), one field per message id
  (`m:<id>`, beside the format version `v`), holding
  `p:<envelope id>` while an envelope works on it and `d` once it was delivered (kept
  RELAY_DEDUP_WINDOW seconds). A message id that is done, or that another envelope holds, is
  not posted (a duplicate); one that ended as a dead letter is forgotten, so a replay or a
  corrected resend can claim it again.
- Order: per target and message id, the newest status *delivered* (`msg:<target>:<id>`). A
  status older than that is stale: skipped and counted. The mark is written when a status is
  delivered, never before, so a newer status that ends as a dead letter does not silence an
  older one that can still be delivered.

`EventLedger.admit` claims and orders a whole bundle in one round trip; `mark` and `forget`
end claims (queued on a pipeline with the bundle's other writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from worker.settings import get_settings
from worker.stores.connection import get_redis, key

# Order of statuses for one message: failed/undelivered are final.
RANK = {"sent": 0, "delivered": 1, "read": 2, "failed": 3, "undelivered": 3}
FORMAT = 1
"""The version of the claims and order hashes, kept in each as field "v". A worker that meets a
newer one leaves the event for a worker that knows it (`Admitted.newer`)."""

# Shared by both scripts (FORMAT is substituted). Claims fields are "m:" + message id, so that
# no message id can be taken for "v". `stale`: whether a status (occ, rank) is older than the
# one delivered (o, r); after a final status only that same status is not stale.
_COMMON = """
local FORMAT = @FORMAT@
local function newer(k)
  return tonumber(redis.call('HGET', k, 'v') or FORMAT) > FORMAT
end
local function stale(k, occ, rank)
  local seen = redis.call('HMGET', k, 'o', 'r')
  local o, r = tonumber(seen[1]), tonumber(seen[2])
  if o == nil then return false end
  if r == 3 then return not (o == occ and r == rank) end
  return occ < o or (occ == o and rank < r)
end
""".replace("@FORMAT@", str(FORMAT))

# KEYS[1]: the event's claims; KEYS[2..]: the order keys of its message ids.
# ARGV: owner, claim ttl, occurred_ms, rank, order (1: check the status order), message ids.
# Returns {positions claimed for this owner, positions of stale ids, 1 if a newer format was
# met (then nothing is claimed)}; the other ids are done or held by another envelope.
_ADMIT = (
    _COMMON
    + """
local mine, ttl, occ, rank = 'p:' .. ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, #KEYS do
  if newer(KEYS[i]) then return {{}, {}, 1} end
end
local fresh, old = {}, {}
for i = 6, #ARGV do
  local held = redis.call('HGET', KEYS[1], 'm:' .. ARGV[i])
  if not held or held == mine then
    if ARGV[5] == '1' and stale(KEYS[i - 4], occ, rank) then
      table.insert(old, i - 5)
    else
      redis.call('HSET', KEYS[1], 'm:' .. ARGV[i], mine)
      table.insert(fresh, i - 5)
    end
  end
end
if #fresh > 0 then
  redis.call('HSETNX', KEYS[1], 'v', FORMAT)
  if redis.call('TTL', KEYS[1]) < tonumber(ttl) then redis.call('EXPIRE', KEYS[1], ttl) end
end
return {fresh, old, 0}
"""
)

# KEYS as for _ADMIT. ARGV: window (0: forget instead), occurred_ms, rank, order (1: raise the
# order mark), message ids. Marks the ids done and, for a delivered status, remembers it as the
# newest unless a newer one was delivered meanwhile.
_MARK = (
    _COMMON
    + """
local window, occ, rank = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 5, #ARGV do
  if window > 0 then
    redis.call('HSET', KEYS[1], 'm:' .. ARGV[i], 'd')
  else
    redis.call('HDEL', KEYS[1], 'm:' .. ARGV[i])
  end
  local k = KEYS[i - 3]
  if ARGV[4] == '1' and not stale(k, occ, rank) then
    redis.call('HSET', k, 'o', occ, 'r', rank, 'v', FORMAT)
    redis.call('EXPIRE', k, math.max(window, 1))
  end
end
if window > 0 then
  redis.call('HSETNX', KEYS[1], 'v', FORMAT)
  if redis.call('TTL', KEYS[1]) < window then redis.call('EXPIRE', KEYS[1], window) end
end
return 1
"""
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of a bundle to admit: claim its message ids for envelope `owner` for `hold`
    seconds and, with an `occurred_ms` and a `status`, check their status order."""

    target: str
    event_id: str
    owner: str
    hold: float
    message_ids: tuple[str, ...]
    occurred_ms: int = 0
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    """The ledger's answer for one entry: ids to send, ids a newer status overtook, and
    whether a newer relay's format was met (then nothing was claimed)."""

    fresh: list[str]
    stale: list[str]
    newer: bool = False

    @property
    def duplicate(self) -> bool:
        """Every id was delivered already or is in another envelope's hands."""
        return not self.fresh and not self.stale and not self.newer


def event_key(target: str, event_id: str) -> str:
    """The key of an event's claims (one hash field per message id)."""
    return key("event", target, event_id)


def _keys(target: str, event_id: str, mids: Sequence[str]) -> list[str]:
    return [event_key(target, event_id), *(key("msg", target, mid) for mid in mids)]


class EventLedger:
    """Claims message ids and orders statuses (`admit`), then marks them done or forgets."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self._admit = self.redis.register_script(_ADMIT)
        self._mark = self.redis.register_script(_MARK)

    def admit(self, entries: list[Entry]) -> list[Admitted]:
        """Per entry, the message ids this envelope may send and those that are stale."""
        window = get_settings().dedup_window
        pipe = self.redis.pipeline(transaction=False)
        for e in entries:
            ttl = int(max(window, e.hold)) or 1
            order = 1 if e.status is not None else 0
            rank = RANK.get(e.status or "", 0)
            args: list[str | int] = [e.owner, ttl, e.occurred_ms, rank, order, *e.message_ids]
            self._admit(keys=_keys(e.target, e.event_id, e.message_ids), args=args, client=pipe)
        out = []
        for e, (fresh, stale, newer) in zip(entries, pipe.execute(), strict=True):
            ids = e.message_ids
            picked = [ids[int(i) - 1] for i in fresh], [ids[int(i) - 1] for i in stale]
            out.append(Admitted(*picked, newer=bool(int(newer))))
        return out

    def mark(
        self,
        target: str,
        event_id: str,
        mids: Sequence[str],
        order: tuple[int, str] | None,
        pipe: redis.Redis | None = None,
    ) -> None:
        """Mark message ids done (remembered for RELAY_DEDUP_WINDOW) and, given the delivered
        status's (occurred_ms, status), raise their order mark; or queue that on `pipe`."""
        window = int(get_settings().dedup_window)
        occurred, status = order or (0, "sent")
        args: list[str | int] = [window, occurred, RANK[status], 1 if order else 0, *mids]
        self._mark(keys=_keys(target, event_id, mids), args=args, client=pipe or self.redis)

    def forget(
        self, target: str, event_id: str, mids: Sequence[str], pipe: redis.Redis | None = None
    ) -> None:
        """Drop the claims: nothing more will be sent for these ids, a replay may claim them."""
        (pipe or self.redis).hdel(event_key(target, event_id), *(f"m:{mid}" for mid in mids))
