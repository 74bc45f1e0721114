"""Idempotency and ordering, kept in Redis and shared by every worker.

- `EventLedger`: an event_id is claimed when first processed (`pending`), marked `done` when
  delivered, and forgotten when it ends as a dead letter (so a corrected resend goes through).
  A second copy of a pending or done event_id is a duplicate: counted, never posted.
- `StatusLedger`: per target and message id, the newest status sent; an older one arriving
  later is stale: skipped and counted, never posted over the newer one.
"""

from __future__ import annotations

import redis

from tasks.events import Event
from worker.redisconn import get_redis, key, text_of
from worker.settings import get_settings

# Order of statuses for one message: failed/undelivered are final.
RANK = {"sent": 0, "delivered": 1, "read": 2, "failed": 3, "undelivered": 3}

# KEYS: one per message id. ARGV: occurred_ms, rank, ttl. Returns the indexes (1-based) of the
# message ids whose status is not older than what was already sent, and records it for them.
_ADMIT = """
local fresh = {}
local occ, rank = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, k in ipairs(KEYS) do
  local seen = redis.call('HMGET', k, 'o', 'r')
  local o, r = tonumber(seen[1]), tonumber(seen[2])
  local stale = false
  if o ~= nil then
    if r == 3 and not (o == occ and r == rank) then stale = true
    elseif occ < o or (occ == o and rank < r) then stale = true end
  end
  if not stale then
    redis.call('HSET', k, 'o', occ, 'r', rank)
    redis.call('EXPIRE', k, ARGV[3])
    table.insert(fresh, i)
  end
end
return fresh
"""


class EventLedger:
    """Claims event ids so that each is posted once within RELAY_DEDUP_WINDOW."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()

    def _key(self, target: str, event_id: str) -> str:
        return key("event", target, event_id)

    def claim(self, target: str, event_id: str, owner: str, hold: float) -> bool:
        """True if envelope `owner` may proceed: the event_id is new, or already its own.

        False for another copy while the event is pending or done. `hold` is how long a
        pending claim lives: past the event's whole retry life."""
        ttl = int(max(get_settings().dedup_window, hold)) or 1
        name, mine = self._key(target, event_id), f"pending:{owner}"
        if self.redis.set(name, mine, nx=True, ex=ttl):
            return True
        # The same envelope again (its message was requeued before it could record the claim).
        current = self.redis.get(name)
        return current is not None and text_of(current) == mine

    def force(self, target: str, event_id: str, owner: str, hold: float) -> None:
        """Claim for a replay, whatever was recorded before."""
        ttl = int(max(get_settings().dedup_window, hold)) or 1
        self.redis.set(self._key(target, event_id), f"pending:{owner}", ex=ttl)

    def done(self, target: str, event_id: str, pipe: redis.Redis | None = None) -> None:
        """Mark the event delivered, or queue that on `pipe` to go with other writes."""
        client = pipe or self.redis
        window = int(get_settings().dedup_window)
        if window > 0:
            client.set(self._key(target, event_id), "done", ex=window)
        else:
            client.delete(self._key(target, event_id))

    def forget(self, target: str, event_id: str) -> None:
        self.redis.delete(self._key(target, event_id))

    def state(self, target: str, event_id: str) -> str | None:
        value = self.redis.get(self._key(target, event_id))
        return text_of(value) if value is not None else None


class StatusLedger:
    """Remembers, per target and message id, the newest status sent."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self._admit = self.redis.register_script(_ADMIT)

    def admit(self, target: str, event: Event) -> list[str]:
        """The message ids of `event` that are not older than what was sent for them."""
        keys = [key("msg", target, mid) for mid in event.message_ids]
        ttl = max(int(get_settings().dedup_window), 1)
        fresh = self._admit(keys=keys, args=[event.occurred_ms, RANK[event.status], ttl])
        return [event.message_ids[int(i) - 1] for i in fresh]
