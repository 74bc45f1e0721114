"""Idempotency and ordering, kept in Redis and shared by every worker.

One hash per target and message id (`msg:<target>:<id>`) holds both, so that an event costs
a few Redis calls per message id, made inside one script call per bundle:

- **Claims**, field `e:<event_id>`: `p:<envelope id>` while an envelope works on that event's
  message id, `d<epoch seconds>` once it was delivered (remembered RELAY_DEDUP_WINDOW seconds,
  counted from the claim). A message id that is done, or that another envelope holds, is not
  posted (a duplicate); one that ended as a dead letter is forgotten, so a replay or a
  corrected resend can claim it again. A Salesforce failure is delivered, retried and
  dead-lettered message id by message id, so a claim is per message id too.
- **Order**, fields `o` and `r`: the newest status *delivered* for the message (occurred ms,
  rank). A status older than that is stale: skipped and counted. The mark is written when a
  status is delivered, never before, so a newer status that ends as a dead letter does not
  silence an older one that can still be delivered.
- **Format**, field `v`: a worker that meets a newer version leaves the event for a worker
  that knows it (`Admitted.newer`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from worker.settings import get_settings
from worker.stores.connection import get_redis, key

# Order of statuses for one message: failed/undelivered are final.
RANK = {"sent": 0, "delivered": 1, "read": 2, "failed": 3, "undelivered": 3}
FORMAT = 1

# `stale`: whether a status (occ, rank) is older than the one delivered (o, r); after a final
# status only that same status is not stale.
_COMMON = """
local FORMAT = @FORMAT@
local function stale(o, r, occ, rank)
  o, r = tonumber(o), tonumber(r)
  if o == nil then return false end
  if r == 3 then return not (o == occ and r == rank) end
  return occ < o or (occ == o and rank < r)
end
""".replace("@FORMAT@", str(FORMAT))

# KEYS: the message hashes of every entry's ids, entry after entry. ARGV[1]: entries; then per
# entry: owner, claim ttl, occurred_ms, rank, order (1: check it), event_id, count of ids.
# Returns per entry {positions claimed for this owner, positions of stale ids, 1 if a newer
# format was met (then nothing is claimed)}; the other ids are done or in other hands.
_ADMIT = (
    _COMMON
    + """
local out, k, a = {}, 1, 2
for _ = 1, tonumber(ARGV[1]) do
  local mine, ttl, occ = 'p:' .. ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local rank, order, field, n = tonumber(ARGV[a + 3]), ARGV[a + 4], 'e:' .. ARGV[a + 5],
    tonumber(ARGV[a + 6])
  a = a + 7
  local seen, newer, fresh, old = {}, 0, {}, {}
  for i = 1, n do
    seen[i] = redis.call('HMGET', KEYS[k + i - 1], 'v', 'o', 'r', field)
    if tonumber(seen[i][1] or FORMAT) > FORMAT then newer = 1 end
  end
  for i = 1, (newer == 0 and n or 0) do
    local h = seen[i]
    if not h[4] or h[4] == mine then
      if order == '1' and stale(h[2], h[3], occ, rank) then
        table.insert(old, i)
      else
        redis.call('HSET', KEYS[k + i - 1], field, mine, 'v', FORMAT)
        if not h[1] then redis.call('EXPIRE', KEYS[k + i - 1], ttl) end
        table.insert(fresh, i)
      end
    end
  end
  table.insert(out, {fresh, old, newer})
  k = k + n
end
return out
"""
)

# KEYS as for _ADMIT, mark after mark. ARGV: marks, window (0: forget instead), now; then per
# mark: event_id, occurred_ms, rank, order (1: raise the order mark), count of ids. Marks the
# ids done and, for a delivered status, remembers it as the newest unless a newer one was
# delivered meanwhile.
_MARK = (
    _COMMON
    + """
local window, done, k, a = tonumber(ARGV[2]), 'd' .. ARGV[3], 1, 4
for _ = 1, tonumber(ARGV[1]) do
  local field, occ, rank = 'e:' .. ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local order, n = ARGV[a + 3], tonumber(ARGV[a + 4])
  a = a + 5
  for i = k, k + n - 1 do
    if window <= 0 then
      redis.call('HDEL', KEYS[i], field)
    elseif order == '1' then
      local h = redis.call('HMGET', KEYS[i], 'o', 'r')
      if stale(h[1], h[2], occ, rank) then
        redis.call('HSET', KEYS[i], field, done)
      else
        redis.call('HSET', KEYS[i], field, done, 'o', occ, 'r', rank)
      end
    else
      redis.call('HSET', KEYS[i], field, done)
    end
  end
  k = k + n
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


@dataclass(frozen=True, slots=True)
class Done:
    """Message ids of an event to mark done; `order`: (occurred_ms, status) of a delivered
    status, which becomes the newest for those ids."""

    target: str
    event_id: str
    message_ids: tuple[str, ...]
    order: tuple[int, str] | None = None


def message_key(target: str, message_id: str) -> str:
    """The hash of a message's claims, newest delivered status and format."""
    return key("msg", target, message_id)


class EventLedger:
    """Claims message ids and orders statuses (`admit`), then marks them done or forgets."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self._admit = self.redis.register_script(_ADMIT)
        self._mark = self.redis.register_script(_MARK)

    def admit(self, entries: list[Entry]) -> list[Admitted]:
        """Per entry, the message ids this envelope may send and those that are stale."""
        if not entries:
            return []
        window = get_settings().dedup_window
        keys: list[str] = []
        args: list[str | int] = [len(entries)]
        for e in entries:
            keys += [message_key(e.target, mid) for mid in e.message_ids]
            order = 1 if e.status is not None else 0
            ttl = int(max(window, e.hold)) or 1
            args += [e.owner, ttl, e.occurred_ms, RANK.get(e.status or "", 0), order]
            args += [e.event_id, len(e.message_ids)]
        out = []
        for e, (fresh, stale, newer) in zip(entries, self._admit(keys, args), strict=True):
            ids = e.message_ids
            picked = [ids[int(i) - 1] for i in fresh], [ids[int(i) - 1] for i in stale]
            out.append(Admitted(*picked, newer=bool(int(newer))))
        return out

    def mark(self, marks: Sequence[Done], pipe: redis.Redis | None = None) -> None:
        """Mark message ids done and raise the order of delivered statuses, in one call (or
        queued on `pipe` to go with other writes)."""
        if not marks:
            return
        keys: list[str] = []
        args: list[str | int] = [len(marks), int(get_settings().dedup_window), int(time.time())]
        for m in marks:
            keys += [message_key(m.target, mid) for mid in m.message_ids]
            occurred, status = m.order or (0, "sent")
            args += [m.event_id, occurred, RANK[status], 1 if m.order else 0, len(m.message_ids)]
        self._mark(keys, args, client=pipe or self.redis)

    def forget(
        self, target: str, event_id: str, mids: Sequence[str], pipe: redis.Redis | None = None
    ) -> None:
        """Drop the claims: nothing more will be sent for these ids, a replay may claim them."""
        client = pipe or self.redis
        for mid in mids:
            client.hdel(message_key(target, mid), f"e:{event_id}")
