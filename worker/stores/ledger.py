"""Idempotency and ordering, kept in Redis and shared by every worker.

- An event_id is claimed when first processed (`pending:<envelope id>`), marked `done` when
  delivered, and forgotten when it ends as a dead letter (so a corrected resend goes through).
  A second copy of a pending or done event_id is a duplicate: counted, never posted.
- Per target and message id, the newest status sent is remembered; an older one arriving later
  is stale: skipped and counted, never posted over the newer one.

`EventLedger.admit` does both for a whole bundle in one round trip; `done` and `forget` end a
claim.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from tasks.events import Event
from worker.settings import get_settings
from worker.stores.connection import get_redis, key

# Order of statuses for one message: failed/undelivered are final.
RANK = {"sent": 0, "delivered": 1, "read": 2, "failed": 3, "undelivered": 3}

# KEYS[1]: the event_id's claim; KEYS[2..]: its message ids (none: claim only).
# ARGV: mode (claim | force | held), claim value, claim ttl, occurred_ms, rank, status ttl.
# Returns {0} when another envelope holds the claim (or, for an envelope that holds it, when
# the event is already done), else {1, positions of the message ids whose status is not older
# than what was sent for them, which is recorded}.
_CLAIM_AND_ADMIT = """
local mine = ARGV[2]
if ARGV[1] == 'force' then
  redis.call('SET', KEYS[1], mine, 'EX', ARGV[3])
elseif ARGV[1] == 'claim' and not redis.call('SET', KEYS[1], mine, 'NX', 'EX', ARGV[3]) then
  if redis.call('GET', KEYS[1]) ~= mine then return {0} end
elseif ARGV[1] == 'held' and redis.call('GET', KEYS[1]) == 'done' then
  -- a second copy of a parked envelope (a pump that died between re-queueing and removing
  -- it): the first copy was delivered
  return {0}
end
local fresh = {1}
local occ, rank, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
for i = 2, #KEYS do
  local k = KEYS[i]
  local seen = redis.call('HMGET', k, 'o', 'r')
  local o, r = tonumber(seen[1]), tonumber(seen[2])
  local stale = false
  if o ~= nil then
    if r == 3 and not (o == occ and r == rank) then stale = true
    elseif occ < o or (occ == o and rank < r) then stale = true end
  end
  if not stale then
    redis.call('HSET', k, 'o', occ, 'r', rank)
    redis.call('EXPIRE', k, ttl)
    table.insert(fresh, i - 1)
  end
end
return fresh
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of a bundle to admit: claim `event_id` for envelope `owner` for `hold` seconds
    (`mode` claim; force for a replay; held when the envelope already holds it) and, given the
    `event`, check the status order of its message ids."""

    target: str
    event_id: str
    owner: str
    hold: float
    mode: str = "claim"
    event: Event | None = None


def event_key(target: str, event_id: str) -> str:
    """The key of an event_id's claim (pending:<envelope id>, or done)."""
    return key("event", target, event_id)


class EventLedger:
    """Claims event ids and orders statuses (`admit`), then marks them done or forgets them."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self._admit = self.redis.register_script(_CLAIM_AND_ADMIT)

    def admit(self, entries: list[Entry]) -> list[tuple[bool, list[str]]]:
        """Per entry: whether its claim is this envelope's, and its fresh message ids."""
        window = get_settings().dedup_window
        status_ttl = max(int(window), 1)
        pipe = self.redis.pipeline(transaction=False)
        for e in entries:
            ids = e.event.message_ids if e.event else ()
            keys = [event_key(e.target, e.event_id)]
            keys += [key("msg", e.target, mid) for mid in ids]
            args: list[str | int] = [e.mode, f"pending:{e.owner}", int(max(window, e.hold)) or 1]
            args += [e.event.occurred_ms, RANK[e.event.status]] if e.event else [0, 0]
            self._admit(keys=keys, args=[*args, status_ttl], client=pipe)
        out: list[tuple[bool, list[str]]] = []
        for e, reply in zip(entries, pipe.execute(), strict=True):
            ids = e.event.message_ids if e.event else ()
            out.append((bool(int(reply[0])), [ids[int(i) - 1] for i in reply[1:]]))
        return out

    def done(self, target: str, event_id: str, pipe: redis.Redis | None = None) -> None:
        """Mark the event delivered, or queue that on `pipe` to go with other writes."""
        client = pipe or self.redis
        window = int(get_settings().dedup_window)
        if window > 0:
            client.set(event_key(target, event_id), "done", ex=window)
        else:
            client.delete(event_key(target, event_id))

    def forget(self, target: str, event_id: str, pipe: redis.Redis | None = None) -> None:
        """Drop the claim: nothing more will be sent for the event, a resend may go through."""
        (pipe or self.redis).delete(event_key(target, event_id))
