"""Bundlers' inflight lists in Redis: how items move into them, how a dead bundler's go back
to the inbox, and how old the oldest is (for `relay status` and `relay health`).

An item is always in the inbox or in exactly one bundler's inflight list, never only in a
worker's memory: it moves atomically (LPOP + RPUSH inside one script) and leaves the inflight
list only after its bundle was published.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from worker.intake.parsing import KEEP_OF_OVERSIZED, OVERSIZED
from worker.stores.connection import key, scan_match, text_of

log = logging.getLogger("relay.inbox")

LEASE = 30  # seconds a bundler's lease outlives its last round: far longer than any round

# KEYS: inbox, inflight, since. ARGV: how many, size limit, now (stamped when the inflight
# list begins: the caller has just moved an item into it). An item over the size limit
# moves as a marker with its size and a prefix: only that much ever reaches a worker's memory.
# RPUSH in slices: Lua's unpack() fails on a few thousand arguments.
TAKE = """
redis.call('SET', KEYS[3], ARGV[3], 'NX')
if tonumber(ARGV[1]) < 1 then return {} end
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
local limit = tonumber(ARGV[2])
for i, item in ipairs(items) do
  if string.len(item) > limit then
    items[i] = MARK .. string.len(item) .. ':' .. string.sub(item, 1, KEEP)
  end
end
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
return items
""".replace("MARK", "'" + OVERSIZED.decode().replace("\0", "\\0") + "'").replace(
    "KEEP", str(KEEP_OF_OVERSIZED)
)

# KEYS: inflight, lease, inbox, since. The lease is checked inside the script so that a
# bundler renewing it at the same moment cannot lose its items. Tail of inflight to head of
# inbox keeps their order, oldest first.
_RECOVER = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local moved = 0
while redis.call('LMOVE', KEYS[1], KEYS[3], 'RIGHT', 'LEFT') do moved = moved + 1 end
redis.call('DEL', KEYS[4])
return moved
"""


@dataclass(frozen=True, slots=True)
class Inflight:
    """One bundler's inflight list: whose, how many items, since when (None: unknown)."""

    owner: str
    items: int
    since: float | None

    def age(self, now: float) -> float:
        return 0.0 if self.since is None else max(0.0, now - self.since)


def inflight_keys(owner: str) -> tuple[str, str, str]:
    """A bundler's inflight list, its lease and the time its oldest item moved in."""
    return key("inflight", owner), key("inflight-lease", owner), key("inflight-since", owner)


def owners(client: redis.Redis) -> list[str]:
    """Every bundler that has an inflight list now."""
    prefix = key("inflight", "")
    return [
        text_of(name)[len(prefix) :]
        for name in client.scan_iter(match=scan_match("inflight", ""), count=500)
    ]


def inflight_lists(client: redis.Redis) -> list[Inflight]:
    """Every non-empty inflight list, with its size and age."""
    found = []
    for owner in owners(client):
        inflight, _, since = inflight_keys(owner)
        size, stamp = client.llen(inflight), client.get(since)
        if size:
            found.append(Inflight(owner, int(size), float(text_of(stamp)) if stamp else None))
    return found


def recover_orphans(client: redis.Redis) -> int:
    """Put dead bundlers' inflight items back at the front of the inbox; return how many."""
    script = client.register_script(_RECOVER)
    moved = 0
    for owner in owners(client):
        inflight, lease, since = inflight_keys(owner)
        moved += int(script(keys=[inflight, lease, key("inbox"), since]))
    if moved:
        log.warning("inbox: %d event(s) of stopped bundlers returned to the inbox", moved)
    return moved


def stuck(client: redis.Redis, worker: str | None = None, now: float | None = None) -> list[str]:
    """Problems with inflight lists older than a live bundler or the recovery would allow
    (only `worker`'s, given its Celery hostname: its bundlers are named `hostname:pid`)."""
    now = time.time() if now is None else now
    return [
        f"bundler {entry.owner} has held {entry.items} event(s) for {entry.age(now):.0f}s "
        f"(a round takes seconds; a dead bundler's events return after {LEASE}s)"
        for entry in inflight_lists(client)
        if entry.age(now) > 2 * LEASE and (worker is None or entry.owner.startswith(worker + ":"))
    ]
