"""Workers' lanes in Redis: where an inbox item waits while a worker delivers it, how a dead
worker's lanes are taken back, and how old the oldest is (for `relay status` and
`relay health`).

Every worker process has a few lanes (`lane:<owner>|<lane>`, Redis lists), listed in the
set `lanes` while they may hold anything: finding them costs one SMEMBERS, not a SCAN of a
keyspace that holds a message hash per message id of the dedup window (tens of millions of
keys; a SCAN every few seconds stalled the feeder for hundreds of milliseconds at 500,000).
An item is always in the inbox or in exactly one lane, never only in a worker's memory: it moves
atomically (LPOP + RPUSH inside one script) and leaves its lane only once it was settled
(delivered, parked or dead-lettered). On its way in, an item is given an id (`WRAP`), the id of
the envelope that delivers it: a dead worker's items are taken again with their ids, so
the worker that takes them over holds the claims the first one wrote and can finish the job.
A dead worker's items go to a list of their own (`inbox:resumed`), which feeders read before
the inbox: the release before this one (0.1.0) reads the inbox too, and would take a wrapped
item for an invalid one.

0.1.0's in-flight lists (`inflight:<owner>`, leased by `inflight-lease:<owner>`) are where its
SCAN looks; lanes are named apart so that its recovery never sees (and never empties) a live
lane. A worker's start finds 0.1.0's lists and leases (one SCAN) and adds them to the set, so
that the recovery below returns a dead 0.1.0 worker's list to the inbox and `relay health`
reports one that waits.

A worker's lease (`inflight-lease:<owner>`) lives RELAY_VISIBILITY_TIMEOUT seconds (10 by
default) from its last renewal; a thread of the feeder renews it every fifth of that for as
long as any lane works, a stopping worker included. Recovery looks at the fleet's leases every
tenth of it, one worker at a time (`recovery_turn`), and takes a lane back only once its lease
was found gone on two looks at least a renewal apart (`suspects`): after a Redis outage longer
than the lease, every lease is gone at once, and the live owners renew theirs within a renewal
of Redis coming back, before a second look. So a dead worker's lanes are back in the inbox
1.1 to 1.5 leases after its last renewal (11-15 s by default).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from worker.intake.parsing import KEEP_OF_OVERSIZED, OVERSIZED, WRAP
from worker.settings import get_settings
from worker.stores.connection import key, scan_match, text_of

log = logging.getLogger("relay.inbox")

RENEWALS = 5  # renewals per lease: a lease outlives a missed renewal or four
LOOKS = 10  # looks for dead workers' lanes per lease (fleet-wide: one worker at a time)

# KEYS: inbox, lane, since, id counter, lease, the set of lanes, resumed items. ARGV: bundle
# size, size limit, now, owner, lease seconds, the lane's name. Renews the lease and lists the
# lane (items never sit in an unleased or unlisted lane), wraps the item BLMOVE has just put
# in the lane (and any a lost reply left there), then fills the bundle from the resumed items
# first and the inbox next, and returns the lane's items. An item over the size limit
# is kept as a marker with its size and a prefix: only that much ever reaches a worker's memory
# (but the first of a burst, which BLMOVE hands over whole). Items a dead worker left keep
# their ids. RPUSH in slices: Lua's unpack() fails on a few thousand arguments.
TAKE = """
local limit, wrap = tonumber(ARGV[2]), WRAP_TEXT
local function bare(item) return string.sub(item, 1, #wrap) ~= wrap end
local function wrapped(items, positions)
  local last = redis.call('INCRBY', KEYS[4], #positions)
  for j, i in ipairs(positions) do
    local item = items[i]
    if string.len(item) > limit then
      item = MARK .. string.len(item) .. ':' .. string.sub(item, 1, KEEP)
    end
    items[i] = wrap .. (last - #positions + j) .. '\\n' .. item
  end
end
redis.call('SET', KEYS[5], ARGV[4], 'EX', ARGV[5])
redis.call('SADD', KEYS[6], ARGV[6])
local held, todo = redis.call('LRANGE', KEYS[2], 0, -1), {}
for i, item in ipairs(held) do if bare(item) then table.insert(todo, i) end end
if #todo > 0 then
  wrapped(held, todo)
  for _, i in ipairs(todo) do redis.call('LSET', KEYS[2], i - 1, held[i]) end
end
if #held > 0 then redis.call('SET', KEYS[3], ARGV[3], 'NX') end
local want = tonumber(ARGV[1]) - #held
if want < 1 then return held end
local items = redis.call('LPOP', KEYS[7], want) or {}
if #items < want then
  for _, item in ipairs(redis.call('LPOP', KEYS[1], want - #items) or {}) do
    table.insert(items, item)
  end
end
if #items == 0 then return held end
redis.call('SET', KEYS[3], ARGV[3], 'NX')
todo = {}
for i, item in ipairs(items) do if bare(item) then table.insert(todo, i) end end
if #todo > 0 then wrapped(items, todo) end
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
for _, item in ipairs(items) do table.insert(held, item) end
return held
"""


def _lua(text: bytes) -> str:
    """A Lua string literal of `text`, control bytes as decimal escapes."""
    return "'" + "".join(c if c.isprintable() else f"\\{ord(c)}" for c in text.decode()) + "'"


TAKE = TAKE.replace("WRAP_TEXT", _lua(WRAP)).replace("MARK", _lua(OVERSIZED))
TAKE = TAKE.replace("KEEP", str(KEEP_OF_OVERSIZED))

# KEYS: lane, lease, where its items go, since, the set of lanes, suspects. ARGV: the lane's
# name, now, seconds a lease must be seen gone. The lease is checked inside the script so that
# a worker renewing it at the same moment cannot lose its items; a lane whose lease is gone is
# only noted (-1) until it was seen gone that long. Tail of the lane to the head of its
# destination keeps their order, oldest first; the lane, empty now and its worker gone, leaves
# the set.
_RECOVER = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HDEL', KEYS[6], ARGV[1])
  return 0
end
local seen = tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '')
if tonumber(ARGV[3]) > 0 and (seen == nil or tonumber(ARGV[2]) - seen < tonumber(ARGV[3])) then
  if seen == nil then redis.call('HSET', KEYS[6], ARGV[1], ARGV[2]) end
  return -1
end
redis.call('HDEL', KEYS[6], ARGV[1])
local moved = 0
while redis.call('LMOVE', KEYS[1], KEYS[3], 'RIGHT', 'LEFT') do moved = moved + 1 end
redis.call('DEL', KEYS[4])
redis.call('SREM', KEYS[5], ARGV[1])
return moved
"""


@dataclass(frozen=True, slots=True)
class Inflight:
    """One lane: whose, how many items, since when (None: unknown), whether its worker's
    lease runs."""

    lane: str
    items: int
    since: float | None
    leased: bool = True

    @property
    def owner(self) -> str:
        return owner_of(self.lane)

    def age(self, now: float) -> float:
        return 0.0 if self.since is None else max(0.0, now - self.since)


def lane_name(owner: str, lane: int) -> str:
    """The name of one of a worker process's lanes (owner: Celery hostname:pid)."""
    return f"{owner}|{lane}"


def owner_of(lane: str) -> str:
    """The worker a lane belongs to (a list of 0.1.0 is named by its owner only)."""
    return lane.rpartition("|")[0] or lane


def is_old(lane: str) -> bool:
    """Whether `lane` is a 0.1.0 worker's in-flight list (bare items, its own lease)."""
    return "|" not in lane


def lane_keys(lane: str) -> tuple[str, str, str]:
    """A lane's list, its worker's lease, and the time its oldest item moved in."""
    items = key("inflight" if is_old(lane) else "lane", lane)
    return items, key("inflight-lease", owner_of(lane)), key("inflight-since", lane)


def resumed_key() -> str:
    """Where a dead worker's items wait to be taken again (wrapped with their ids: only
    feeders of this release read it, before the inbox)."""
    return key("inbox", "resumed")


def destination(lane: str) -> str:
    """Where recovery puts a lane's items: a 0.1.0 list's (bare) back on the inbox."""
    return key("inbox") if is_old(lane) else resumed_key()


def lanes_key() -> str:
    """The set of lanes that may hold items (workers add theirs with each lease renewal)."""
    return key("lanes")


def suspects_key() -> str:
    """Lanes whose lease was found gone, with when it was first found gone (a hash)."""
    return key("lanes-suspect")


def recovery_turn(client: redis.Redis, owner: str, every: float) -> bool:
    """Whether this worker looks for dead workers' lanes now: one worker per `every` seconds
    for the whole fleet (every worker looking at every lane would cost a call per lane of
    the fleet per worker)."""
    return bool(client.set(key("lanes-recovery"), owner, nx=True, px=max(1, int(every * 1000))))


def lanes(client: redis.Redis, scan: bool = False) -> list[str]:
    """Every lane that may hold items; with `scan`, also lanes missing from the set (0.1.0
    workers' lists, live ones found by their leases, or lanes of a Redis that lost the set),
    found by SCANs of the whole keyspace."""
    found = {text_of(name) for name in client.smembers(lanes_key())}
    if scan:
        # Two walks of the keyspace: `inflight*` holds 0.1.0's lists and every lease.
        kinds = ("lane", "inflight", "inflight-lease")
        prefixes = [key(kind, "") for kind in kinds]
        for match in (scan_match("lane", ""), scan_match("inflight")):
            for name in map(text_of, client.scan_iter(match=match, count=5000)):
                found |= {name[len(p) :] for p in prefixes if name.startswith(p)}
        # A lease of this release names a worker whose lanes are `<owner>|n`, not a list.
        owners = {owner_of(lane) for lane in found if not is_old(lane)}
        found = {lane for lane in found if not (is_old(lane) and lane in owners)}
    return sorted(found)


def register(client: redis.Redis, names: list[str]) -> None:
    """Add lists found by a SCAN to the set of lanes, so that every recovery pass looks at
    them (a live 0.1.0 worker's list included: it is taken back once its lease runs out)."""
    if names:
        client.sadd(lanes_key(), *names)


def inflight_lists(client: redis.Redis, worker: str | None = None) -> list[Inflight]:
    """Every non-empty lane (only `worker`'s, given its Celery hostname: its lanes are named
    `hostname:pid|n`), with its size and age, read in one round trip."""
    names = [n for n in lanes(client) if worker is None or owner_of(n).startswith(worker + ":")]
    pipe = client.pipeline(transaction=False)
    for lane in names:
        items, lease, since = lane_keys(lane)
        pipe.llen(items)
        pipe.get(since)
        pipe.exists(lease)
    replies = pipe.execute() if names else []
    found = []
    for lane, size, stamp, lease in zip(names, *(replies[i::3] for i in range(3)), strict=True):
        if size:
            when = float(text_of(stamp)) if stamp else None
            found.append(Inflight(lane, int(size), when, bool(lease)))
    return found


def recover_orphans(client: redis.Redis, scan: bool = False, confirm: float = 0.0) -> int:
    """Put dead workers' lanes back at the front of `destination`; return how many items. With
    `scan` (once, when a worker starts) lanes missing from the set are looked for too. With
    `confirm`, a lane goes back only once its lease was seen gone `confirm` seconds before."""
    script = client.register_script(_RECOVER)
    now = time.time()
    found = lanes(client, scan)
    if scan:
        register(client, found)
    # Every worker looks at every lane of the fleet: one pipeline of lease checks first, and
    # the script (which checks the lease again, atomically) only for lanes whose lease is gone.
    pipe = client.pipeline(transaction=False)
    for lane in found:
        pipe.exists(lane_keys(lane)[1])
    leased = pipe.execute() if found else []
    moved = 0
    for lane in (lane for lane, alive in zip(found, leased, strict=True) if not alive):
        items, lease, since = lane_keys(lane)
        keys = [items, lease, destination(lane), since, lanes_key(), suspects_key()]
        moved += max(0, int(script(keys=keys, args=[lane, now, confirm])))
    if moved:
        log.warning("inbox: %d event(s) of stopped workers taken back", moved)
    return moved


def stuck(client: redis.Redis, worker: str | None = None, now: float | None = None) -> list[str]:
    """Problems with lanes older than any delivery takes or the recovery would allow (only
    `worker`'s, given its Celery hostname): a bundle sends for RELAY_TASK_BUDGET at most, and
    a dead worker's lane returns within two leases."""
    now = time.time() if now is None else now
    settings = get_settings()
    lease = settings.visibility_timeout
    limit = settings.task_budget + 2 * lease + 30
    found = inflight_lists(client, worker)
    return [
        f"lane {entry.lane} has held {entry.items} event(s) for {entry.age(now):.0f}s "
        f"(a delivery takes at most {settings.task_budget:g}s; a dead worker's events return "
        f"within {2 * lease:g}s)"
        for entry in found
        if entry.age(now) > limit
    ] + [
        f"in-flight list {entry.lane} of a stopped 0.1.0 worker holds {entry.items} event(s) "
        "not yet returned to the inbox (a running worker's recovery takes them back)"
        for entry in found
        if is_old(entry.lane) and not entry.leased
    ]
