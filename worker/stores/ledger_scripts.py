"""The ledger's Lua scripts (see `worker.stores.ledger` for what the fields mean).

Both run once per bundle (or per batch of marks) and touch only the message hashes named in
KEYS. Times are the caller's epoch seconds (`now`), so that every worker's clock reads a
reservation alike; Redis's own clock would need effects replication on Redis 6.
"""

from __future__ import annotations

FORMAT = 2
"""Version of a message hash (field `v`). 2: the in-flight reservation `f` (a worker of
format 1 would not respect it, so it must leave these hashes alone)."""

# stale(o, r, occ, rank): whether the status (occ, rank) is older than (o, r); after a final
# status (rank 3) only that same status is not. extend(key, ttl): never shorten a hash's life.
# reserved(f, owner, now): whether reservation `f` ("<until>:<owner>") is another owner's and
# still running.
_COMMON = """
local FORMAT = @FORMAT@
local function stale(o, r, occ, rank)
  o, r = tonumber(o), tonumber(r)
  if o == nil then return false end
  if r == 3 then return not (o == occ and r == rank) end
  return occ < o or (occ == o and rank < r)
end
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
local function owner_of(f)
  local till, who = string.match(f or '', '^(%d+):(.*)$')
  return who, tonumber(till)
end
local function reserved(f, owner, now)
  local who, till = owner_of(f)
  return who ~= nil and who ~= owner and till > now
end
""".replace("@FORMAT@", str(FORMAT))

# KEYS: the message hashes of every entry's ids, entry after entry. ARGV: entries, now,
# reservation lifetime; then per entry: owner, claim ttl, occurred_ms, rank, order (1: it
# orders), event_id, count of ids.
# First every hash is read and, per message, the newest ordering status the bundle may send is
# picked. Then per id: in other hands (another envelope's claim, or done): left alone; older
# than the newest delivered: stale; an older status of this bundle, or another envelope's
# reservation running: held (claimed, not reserved); else fresh: claimed and, for an ordering
# status, reserved until now + lifetime. Returns per entry {fresh positions, stale positions,
# 1 if a newer format was met (then nothing is claimed), held positions}.
ADMIT = (
    _COMMON
    + """
local now, life, a, k = tonumber(ARGV[2]), tonumber(ARGV[3]), 4, 1
local entries, best = {}, {}
for e = 1, tonumber(ARGV[1]) do
  local x = {owner = ARGV[a], ttl = tonumber(ARGV[a + 1]), occ = tonumber(ARGV[a + 2]),
    rank = tonumber(ARGV[a + 3]), order = ARGV[a + 4] == '1', field = 'e:' .. ARGV[a + 5],
    n = tonumber(ARGV[a + 6]), k = k, seen = {}, newer = 0}
  x.mine = 'p:' .. x.owner
  a, k = a + 7, k + x.n
  for i = 1, x.n do
    x.seen[i] = redis.call('HMGET', KEYS[x.k + i - 1], 'v', 'o', 'r', 'f', x.field)
    if tonumber(x.seen[i][1] or FORMAT) > FORMAT then x.newer = 1 end
  end
  for i = 1, (x.order and x.newer == 0) and x.n or 0 do
    local h, key = x.seen[i], KEYS[x.k + i - 1]
    if (not h[5] or h[5] == x.mine) and not stale(h[2], h[3], x.occ, x.rank) then
      local b = best[key]
      if b == nil or (stale(x.occ, x.rank, b.occ, b.rank)
          and not stale(b.occ, b.rank, x.occ, x.rank)) then
        best[key] = x
      end
    end
  end
  entries[e] = x
end
local out, claimed = {}, {}
for _, x in ipairs(entries) do
  local fresh, old, held = {}, {}, {}
  for i = 1, x.newer == 0 and x.n or 0 do
    local h, key = x.seen[i], KEYS[x.k + i - 1]
    local claim = claimed[key .. '\0' .. x.field] or h[5]  -- a copy earlier in this bundle
    if not claim or claim == x.mine then
      if x.order and stale(h[2], h[3], x.occ, x.rank) then
        table.insert(old, i)
      else
        redis.call('HSET', key, x.field, x.mine, 'v', FORMAT)
        claimed[key .. '\0' .. x.field] = x.mine
        if x.order and (best[key] ~= x or reserved(h[4], x.owner, now)) then
          table.insert(held, i)
        else
          if x.order then redis.call('HSET', key, 'f', (now + life) .. ':' .. x.owner) end
          table.insert(fresh, i)
        end
        extend(key, x.ttl)
      end
    end
  end
  table.insert(out, {fresh, old, x.newer, held})
end
return out
"""
)

# KEYS as for ADMIT, mark after mark. ARGV: marks, window, now; then per mark: event_id,
# occurred_ms, rank, mode, owner, count of ids. Modes: `done` marks the ids delivered (or
# skipped, or stale), `order` does that and raises the newest delivered status unless a newer
# one was delivered meanwhile; `release` (parked) drops the owner's reservation only;
# `forget` (a dead letter) drops the owner's claim and reservation; `any` drops any claim still
# in an envelope's hands (a dead letter of format 1 does not say whose). Every id's hash lives
# at least `window` more seconds after a done mark: the mark is remembered that long.
MARK = (
    _COMMON
    + """
local window, done, k, a = tonumber(ARGV[2]), 'd' .. ARGV[3], 1, 4
for _ = 1, tonumber(ARGV[1]) do
  local field, occ, rank = 'e:' .. ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local mode, owner, n = ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5])
  a = a + 6
  for i = k, k + n - 1 do
    local h = redis.call('HMGET', KEYS[i], 'o', 'r', 'f', field)
    if mode == 'done' or mode == 'order' then
      if window <= 0 then
        redis.call('HDEL', KEYS[i], field)
      elseif mode == 'order' and not stale(h[1], h[2], occ, rank) then
        redis.call('HSET', KEYS[i], field, done, 'o', occ, 'r', rank)
      else
        redis.call('HSET', KEYS[i], field, done)
      end
      if window > 0 then extend(KEYS[i], window) end
    elseif (mode == 'forget' and h[4] == 'p:' .. owner)
        or (mode == 'any' and h[4] and string.sub(h[4], 1, 2) == 'p:') then
      redis.call('HDEL', KEYS[i], field)
    end
    if h[3] and owner_of(h[3]) == owner then redis.call('HDEL', KEYS[i], 'f') end
  end
  k = k + n
end
return 1
"""
)
