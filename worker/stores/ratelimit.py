"""Per-target request rate limit shared by all workers (GCRA in one Lua script).

Several workers share one API quota, so the limit lives in Redis. A caller asks for n
requests; if they fit within `max_wait` seconds they are reserved and the caller sleeps that
long, otherwise nothing is reserved and the caller parks the event for later.

Past one Redis the quota is shared out: each of RELAY_CELLS' N cells allows rate / N (its
messages are a hashed, even share of the target's), so no limiter spans cells and no cell
waits on another's Redis (docs/deploying/cells.md weighs this against one limiter Redis).
"""

from __future__ import annotations

import time

import redis

from worker.settings import get_settings
from worker.settings.cells import cell_urls
from worker.stores.connection import get_redis, key, text_of

# KEYS[1]: theoretical arrival time. ARGV: now, seconds per request, burst, n, max wait.
# Returns the wait in seconds (reserved) or, negated, the wait that was too long (not reserved).
_ACQUIRE = """
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, n, max_wait = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + n * interval
local wait = new_tat - burst * interval - now
if wait < 0 then wait = 0 end
if wait > max_wait then return tostring(-wait) end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return tostring(wait)
"""


class RateLimiter:
    """Reserves request slots for a target at `rate` per second (burst of one second's worth)."""

    def __init__(self, client: redis.Redis | None = None, max_wait: float = 2.0) -> None:
        self.redis = client or get_redis()
        self.max_wait = max_wait
        self._acquire = self.redis.register_script(_ACQUIRE)
        self.share = max(1, len(cell_urls(get_settings().cells)))
        """The cells the target's rate is divided among (1: the whole rate here)."""

    def acquire(
        self,
        target: str,
        rate: float,
        n: int = 1,
        now: float | None = None,
        max_wait: float | None = None,
    ) -> float:
        """Seconds to wait before sending n requests (reserved), or negative: park that long.
        `max_wait` lowers the limiter's own cap (a caller whose time is nearly up)."""
        now = time.time() if now is None else now
        rate = rate / self.share
        burst = max(1.0, rate)
        cap = self.max_wait if max_wait is None else max(0.0, min(self.max_wait, max_wait))
        answer = self._acquire(keys=[key("rate", target)], args=[now, 1.0 / rate, burst, n, cap])
        return float(text_of(answer))
