"""The ledger's Lua scripts (see `worker.stores.ledger` for what the fields mean).

Both run once per bundle (or per batch of marks) and touch only the message hashes named in
KEYS. Times are the caller's epoch seconds (`now`), so that every worker's clock reads a
reservation alike; Redis's own clock would need effects replication on Redis 6.
"""

from __future__ import annotations

FORMAT = 2
"""Version of a message hash (field `v`). 2: the in-flight reservation `f` (a worker of
format 1 would not respect it, so it must leave these hashes alone)."""

# COMPAT: what is done with 0.1.0's per-event claims (`event:<target>:<event_id>`,
# "pending:<envelope id>" or "done"): 0 nothing, 1 read, 2 read and written (RELAY_COMPAT_0_1
# off, read, on).
# old_claim(v): such a value as a claim of this release's form ('d' for done, nil for none).
# stale(o, r, occ, rank): whether the status (occ, rank) is older than (o, r); after a final
# status (rank 3) only that same status is not. extend(key, ttl): never shorten a hash's life.
# owner_of(f): the owner and end of reservation `f` ("<until>:<owner>"; '' once released).
# The scripts run for every message id of every bundle: plain loops, no tables per id.
_COMMON = """
local FORMAT = @FORMAT@
local SLACK, COMPAT = tonumber(ARGV[3]), tonumber(ARGV[4])
local function old_claim(v)
  if v == 'done' then return 'd' end
  if v and string.sub(v, 1, 8) == 'pending:' then return 'p:' .. string.sub(v, 9) end
  return nil
end
local function stale(o, r, occ, rank)
  o, r = tonumber(o), tonumber(r)
  if o == nil then return false end
  if r == 3 then return not (o == occ and r == rank) end
  return occ < o or (occ == o and rank < r)
end
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl + SLACK) end
end
local function owner_of(f)
  if not f or f == '' then return nil, 0 end
  local colon = string.find(f, ':', 1, true)
  return string.sub(f, colon + 1), tonumber(string.sub(f, 1, colon - 1))
end
""".replace("@FORMAT@", str(FORMAT))

# KEYS: the message hashes of every entry's ids, entry after entry; then (COMPAT > 0) each
# entry's 0.1.0 claim. ARGV: entries, now, reservation lifetime (also the slack every life is
# extended by), COMPAT; then per entry: owner, claim ttl, occurred_ms, rank, order (1: it
# orders), event_id, count of ids. A 0.1.0 claim stands for the claim of an id whose hash has
# none (0.1.0 wrote none there); with COMPAT 2 an entry that claims anything writes its own
# 0.1.0 claim too (NX: an older one stands), so that 0.1.0 workers count copies duplicates.
# First every hash is read and, per message, the newest ordering status the bundle may send is
# picked. Then per id: in other hands (another envelope's claim, or done): left alone; older
# than the newest delivered: stale; an older status of this bundle, or another envelope's
# reservation running: held (claimed, not reserved); else fresh: claimed and, for an ordering
# status, reserved until now + lifetime. A second copy of one envelope in the bundle (a retry
# parked twice: a worker killed between parking it and acknowledging its message) is left
# alone: the first copy is sent. Returns per entry {fresh positions, stale positions,
# 1 if a newer format was met (then nothing is claimed), held positions}.
ADMIT = (
    _COMMON
    + """
local now, a, k, total = tonumber(ARGV[2]), 5, 1, 0
local till = (now + tonumber(ARGV[3])) .. ':'
local entries, best, times, twins = {}, {}, {}, {}
for e = 1, tonumber(ARGV[1]) do total = total + tonumber(ARGV[a + 7 * e - 1]) end
for e = 1, tonumber(ARGV[1]) do
  local x = {owner = ARGV[a], ttl = tonumber(ARGV[a + 1]), occ = tonumber(ARGV[a + 2]),
    rank = tonumber(ARGV[a + 3]), order = ARGV[a + 4] == '1', field = 'e:' .. ARGV[a + 5],
    n = tonumber(ARGV[a + 6]), k = k, seen = {}, newer = false}
  x.mine = 'p:' .. x.owner
  x.old = COMPAT > 0 and old_claim(redis.call('GET', KEYS[total + e])) or nil
  x.event = KEYS[total + e]
  a, k = a + 7, k + x.n
  for i = 1, x.n do
    local key = KEYS[x.k + i - 1]
    local h = redis.call('HMGET', key, 'v', 'o', 'r', 'f', x.field)
    if not h[5] then h[5] = x.old end
    x.seen[i] = h
    times[key] = (times[key] or 0) + 1
    if h[1] and tonumber(h[1]) > FORMAT then x.newer = true end
  end
  if x.order and not x.newer then
    for i = 1, x.n do
      local h, key = x.seen[i], KEYS[x.k + i - 1]
      if (not h[5] or h[5] == x.mine) and not stale(h[2], h[3], x.occ, x.rank) then
        local b = best[key]
        if b == nil or (stale(x.occ, x.rank, b.occ, b.rank)
            and not stale(b.occ, b.rank, x.occ, x.rank)) then
          best[key] = x
        end
      end
    end
  end
  entries[e] = x
end
local out, claimed = {}, {}
for _, x in ipairs(entries) do
  local fresh, old, held = {}, {}, {}
  for i = 1, x.newer and 0 or x.n do
    local h, key = x.seen[i], KEYS[x.k + i - 1]
    local claim = h[5]
    if times[key] > 1 then  -- a copy, or another status, earlier in this bundle
      local copy = key .. '\0' .. x.field .. '\0' .. x.owner
      claim = claimed[key .. '\0' .. x.field] or claim
      claimed[key .. '\0' .. x.field] = claim or x.mine
      if twins[copy] then claim = '' end  -- a second copy of this very envelope: a duplicate
      twins[copy] = true
    end
    if not claim or claim == x.mine then
      if x.order and stale(h[2], h[3], x.occ, x.rank) then
        table.insert(old, i)
      else
        local who, ends = owner_of(h[4])
        if x.order and (best[key] ~= x or (who and who ~= x.owner and ends > now)) then
          redis.call('HSET', key, x.field, x.mine, 'v', FORMAT)
          table.insert(held, i)
        elseif x.order then
          redis.call('HSET', key, x.field, x.mine, 'v', FORMAT, 'f', till .. x.owner)
          table.insert(fresh, i)
        else
          redis.call('HSET', key, x.field, x.mine, 'v', FORMAT)
          table.insert(fresh, i)
        end
        if h[1] then extend(key, x.ttl) else redis.call('EXPIRE', key, x.ttl + SLACK) end
      end
    end
  end
  if COMPAT > 1 and (#fresh > 0 or #held > 0) then
    redis.call('SET', x.event, 'pending:' .. x.owner, 'NX', 'EX', x.ttl + SLACK)
  end
  table.insert(out, {fresh, old, x.newer and 1 or 0, held})
end
return out
"""
)

# KEYS as for ADMIT, mark after mark (with COMPAT > 0 each mark's 0.1.0 claim after them).
# ARGV: marks, window, slack, COMPAT, now; then per mark: event_id, occurred_ms, rank, mode,
# owner, count of ids. Forgetting drops the 0.1.0 claim too when it is the owner's (`any`:
# anyone's), so that a replay finds the event free. Modes: `done` marks the ids delivered
# (or skipped, or stale), `order` does that and raises the newest delivered status unless a
# newer one was delivered meanwhile; `release` (parked) drops the owner's reservation only;
# `forget` (a dead letter) drops the owner's claim and reservation; `any` drops any claim still
# in an envelope's hands (a dead letter of format 1 does not say whose). Every id's hash lives
# at least `window` more seconds after a done mark: the mark is remembered that long. (When
# the mark voids the envelope's own running reservation, its admission extended the hash to
# its claim's life plus the slack moments ago, which covers that; else TTL is asked.)
MARK = (
    _COMMON
    + """
local window, done, now, k, a = tonumber(ARGV[2]), 'd' .. ARGV[5], tonumber(ARGV[5]), 1, 6
local total = 0
for m = 1, tonumber(ARGV[1]) do total = total + tonumber(ARGV[a + 6 * m - 1]) end
for m = 1, tonumber(ARGV[1]) do
  local field, occ, rank = 'e:' .. ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local mode, owner, n = ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5])
  if COMPAT > 0 and (mode == 'forget' or mode == 'any') then
    local claim = old_claim(redis.call('GET', KEYS[total + m]))
    if claim and (claim == 'p:' .. owner or (mode == 'any' and claim ~= 'd')) then
      redis.call('DEL', KEYS[total + m])
    end
  end
  local marks = (mode == 'done' or mode == 'order') and window > 0
  a = a + 6
  for i = k, k + n - 1 do
    local key = KEYS[i]
    local h = redis.call('HMGET', key, 'o', 'r', 'f', field)
    local who, ends = owner_of(h[3])
    local mine = who == owner
    if marks then
      local raise = mode == 'order' and not stale(h[1], h[2], occ, rank)
      if raise and mine then
        redis.call('HSET', key, field, done, 'o', occ, 'r', rank, 'f', '')
      elseif raise then
        redis.call('HSET', key, field, done, 'o', occ, 'r', rank)
      elseif mine then
        redis.call('HSET', key, field, done, 'f', '')
      else
        redis.call('HSET', key, field, done)
      end
      if not (mine and ends > now) then extend(key, window) end
    else
      if mode == 'done' or mode == 'order' or (mode == 'forget' and h[4] == 'p:' .. owner)
          or (mode == 'any' and h[4] and string.sub(h[4], 1, 2) == 'p:') then
        redis.call('HDEL', key, field)
      end
      if mine then redis.call('HSET', key, 'f', '') end
    end
  end
  k = k + n
end
return 1
"""
)
