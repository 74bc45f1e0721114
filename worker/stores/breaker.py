"""Per-target circuit breaker, shared in Redis by every worker.

After `threshold` consecutive retryable failures a target's circuit opens for a cool-down
(doubling up to `max_cooldown` while it keeps failing). While open, its events are parked
without an attempt being spent and without a request; once the cool-down ends, one worker
wins the probe lock and sends one request: success closes the circuit, failure reopens it.
Other targets are not affected: parked events leave the worker threads free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from worker.settings import get_settings
from worker.stores.connection import get_redis, key, text_of

# KEYS[1]: the target's state hash. ARGV: now, threshold, base cool-down, max cool-down.
# Counts one retryable failure and returns {open_until, failures}. A failure while the circuit is
# open is a straggler sent before it opened and is ignored; a failure after the cool-down ended
# is the probe's, and reopens the circuit for twice as long.
_FAIL = """
local now, threshold = tonumber(ARGV[1]), tonumber(ARGV[2])
local base, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local opened = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local n = 0
if opened > now then return {tostring(opened), '0'} end
if opened > 0 then
  local cool = tonumber(redis.call('HGET', KEYS[1], 'cooldown') or '0')
  cool = math.min(math.max(cool * 2, base), cap)
  opened = now + cool
  redis.call('HSET', KEYS[1], 'open_until', opened, 'cooldown', cool, 'failures', 0)
else
  n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if n >= threshold then
    opened = now + base
    n = 0
    redis.call('HSET', KEYS[1], 'open_until', opened, 'cooldown', base, 'failures', 0)
  else
    opened = 0
  end
end
redis.call('EXPIRE', KEYS[1], 86400)
return {tostring(opened), tostring(n)}
"""
_CACHE_SECONDS = 1.0  # how stale a worker's view of a closed circuit may be


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a circuit opens and for how long."""

    threshold: int = 20
    """Consecutive retryable failures (5xx, 429, no answer) that open the circuit."""
    cooldown: float = 15.0
    """Seconds the circuit stays open the first time; doubles while probes keep failing."""
    max_cooldown: float = 300.0
    """Cap on the cool-down."""


class CircuitBreaker:
    """Open/closed/probing state per target; a closed circuit costs one cached read a second."""

    def __init__(self, policy: BreakerPolicy, client: redis.Redis | None = None) -> None:
        self.policy = policy
        self.redis = client or get_redis()
        self._fail = self.redis.register_script(_FAIL)
        # target -> (open_until, failures, read_at): this worker's recent view of the state
        self._view: dict[str, tuple[float, int, float]] = {}

    @classmethod
    def from_settings(cls, client: redis.Redis | None = None) -> CircuitBreaker:
        """The breaker every worker shares, with RELAY_BREAKER_* as its policy."""
        settings = get_settings()
        policy = BreakerPolicy(
            settings.breaker_threshold, settings.breaker_cooldown, settings.breaker_max_cooldown
        )
        return cls(policy, client)

    def _key(self, target: str) -> str:
        return key("breaker", target)

    def _state(self, target: str, now: float) -> tuple[float, int]:
        view = self._view.get(target)
        if view is None or now - view[2] > _CACHE_SECONDS:
            until_raw, failures_raw = self.redis.hmget(self._key(target), "open_until", "failures")
            view = (
                float(text_of(until_raw)) if until_raw else 0.0,
                int(text_of(failures_raw)) if failures_raw else 0,
                now,
            )
            self._view[target] = view
        return view[0], view[1]

    def open_until(self, target: str, now: float | None = None) -> float | None:
        """When the target's circuit opens for a probe (past when probing); None if closed."""
        now = time.time() if now is None else now
        until, _ = self._state(target, now)
        return until or None

    def acquire(self, target: str, now: float | None = None) -> float | None:
        """Ask to send to `target` now: None when granted (the circuit is closed, or this
        caller takes the one probe of a cool-down that ended), else until when to wait."""
        now = time.time() if now is None else now
        until, _ = self._state(target, now)
        if until == 0.0:
            return None
        if until > now:
            return until
        # Cool-down over: exactly one probe per cool-down, whoever comes first.
        self._view.pop(target, None)
        probe = self.redis.set(
            self._key(target) + ":probe", "1", nx=True, ex=max(1, int(self.policy.cooldown))
        )
        return None if probe else now + self.policy.cooldown

    def success(self, target: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        until, failures = self._state(target, now)
        if until or failures:
            self.redis.delete(self._key(target), self._key(target) + ":probe")
        self._view[target] = (0.0, 0, now)

    def failure(self, target: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        until, failures = self._fail(
            keys=[self._key(target)],
            args=[now, self.policy.threshold, self.policy.cooldown, self.policy.max_cooldown],
        )
        self._view[target] = (float(text_of(until)), int(text_of(failures)), now)
