"""Idempotency and ordering, kept in Redis and shared by every worker.

- `EventLedger`: an event_id is claimed when first processed (`pending`), marked `done` when
  delivered, and forgotten when it ends as a dead letter (so a corrected resend goes through).
  A second copy of a pending or done event_id is a duplicate: counted, never posted.
- `StatusLedger`: per target and message id, the newest status sent; an older one arriving
  later is stale: skipped and counted, never posted over the newer one.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from tasks.events import Event
from worker.redisconn import get_redis, key, text_of
from worker.settings import get_settings

# Order of statuses for one message: failed/undelivered are final.
RANK = {"sent": 0, "delivered": 1, "read": 2, "failed": 3, "undelivered": 3}

# Lua: admit the message ids in KEYS[first..] at (occ, rank), recording the status of each one
# that is not older than what was already sent; `fresh` gets their 1-based positions.
_STATUS_ORDER = """
for i = first, #KEYS do
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
    table.insert(fresh, i - first + 1)
  end
end
"""

# KEYS: one per message id. ARGV: occurred_ms, rank, ttl. Returns the fresh ids' positions.
_ADMIT = (
    "local fresh, first = {}, 1\n"
    "local occ, rank, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]\n"
    + _STATUS_ORDER
    + "return fresh"
)

# An event's claim and status order together, so a batch needs one round trip for both.
# KEYS[1]: the event_id's claim; KEYS[2..]: its message ids (none: claim only).
# ARGV: mode (claim | force | held), claim value, claim ttl, occurred_ms, rank, status ttl.
# Returns {0} when another envelope holds the claim (or, for an envelope that holds it, when
# the event is already done), else {1, fresh positions...}.
_CLAIM_AND_ADMIT = (
    """
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
local fresh, first = {1}, 2
local occ, rank, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
"""
    + _STATUS_ORDER
    + "return fresh"
)


@dataclass(frozen=True, slots=True)
class Claim:
    """One event's claim on its event_id: by envelope `owner`, for `hold` seconds."""

    target: str
    event_id: str
    owner: str
    hold: float
    replayed: bool = False


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
        return self.claim_many([Claim(target, event_id, owner, hold)])[0]

    def claim_many(self, claims: list[Claim]) -> list[bool]:
        """`claim` (or `force`, for replays) for many events in one round trip (two when some
        event_id was already claimed: then its owner is read back)."""
        window = get_settings().dedup_window
        pipe = self.redis.pipeline(transaction=False)
        for c in claims:
            ttl = int(max(window, c.hold)) or 1
            name, mine = self._key(c.target, c.event_id), f"pending:{c.owner}"
            pipe.set(name, mine, ex=ttl, nx=not c.replayed)
        taken = [bool(ok) for ok in pipe.execute()]
        lost = [i for i, ok in enumerate(taken) if not ok]
        if lost:
            for i in lost:
                pipe.get(self._key(claims[i].target, claims[i].event_id))
            for i, current in zip(lost, pipe.execute(), strict=True):
                taken[i] = current is not None and text_of(current) == f"pending:{claims[i].owner}"
        return taken

    def force(self, target: str, event_id: str, owner: str, hold: float) -> None:
        """Claim for a replay, whatever was recorded before."""
        self.claim_many([Claim(target, event_id, owner, hold, replayed=True)])

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

    def admit_many(self, items: list[tuple[str, Event]]) -> list[list[str]]:
        """`admit` for many (target, event) pairs, in order, in one round trip."""
        ttl = max(int(get_settings().dedup_window), 1)
        pipe = self.redis.pipeline(transaction=False)
        for target, event in items:
            keys = [key("msg", target, mid) for mid in event.message_ids]
            self._admit(keys=keys, args=[event.occurred_ms, RANK[event.status], ttl], client=pipe)
        return [
            [event.message_ids[int(i) - 1] for i in fresh]
            for (_, event), fresh in zip(items, pipe.execute(), strict=True)
        ]

    def admit(self, target: str, event: Event) -> list[str]:
        """The message ids of `event` that are not older than what was sent for them."""
        return self.admit_many([(target, event)])[0]


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of a batch to admit: claim its event_id (`mode` claim; force for a replay;
    held when the envelope already holds it) and, with `order`, check its status order."""

    target: str
    event: Event
    owner: str
    hold: float
    mode: str = "claim"
    order: bool = True


class Admission:
    """`EventLedger.claim` and `StatusLedger.admit` for a whole batch in one round trip."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self._script = self.redis.register_script(_CLAIM_AND_ADMIT)

    def run(self, entries: list[Entry]) -> list[tuple[bool, list[str]]]:
        """Per entry: whether its claim is this envelope's, and its fresh message ids."""
        window = get_settings().dedup_window
        status_ttl = max(int(window), 1)
        pipe = self.redis.pipeline(transaction=False)
        for e in entries:
            ids = e.event.message_ids if e.order else ()
            keys = [key("event", e.target, e.event.event_id)]
            keys += [key("msg", e.target, mid) for mid in ids]
            args: list[str | int] = [e.mode, f"pending:{e.owner}", int(max(window, e.hold)) or 1]
            args += [e.event.occurred_ms, RANK[e.event.status], status_ttl]
            self._script(keys=keys, args=args, client=pipe)
        out: list[tuple[bool, list[str]]] = []
        for e, reply in zip(entries, pipe.execute(), strict=True):
            taken = bool(int(reply[0]))
            out.append((taken, [e.event.message_ids[int(i) - 1] for i in reply[1:]]))
        return out
