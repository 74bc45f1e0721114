"""Per-target circuit breaker, shared in Redis by every worker.

After `threshold` consecutive retryable failures a target's circuit opens for a cool-down
(doubling up to `max_cooldown` while it keeps failing). While open, its events are parked
without an attempt being spent and without a request; once the cool-down ends, one worker
wins the probe lock and sends one request: success closes the circuit, failure reopens it.
Other targets are not affected: parked events leave the worker threads free.

What a worker hears is collapsed before it reaches Redis: answers only note an outcome in
memory (`success`, `failure`: no Redis call, so they can neither fail nor wait), and
`write` sends, per target, what was heard since the last write: one DEL for a recovery and
one script call for the failures after it. The delivery's answer book calls it with its done
marks, every few milliseconds at most. Reads are collapsed too: one thread at a time reads a
target's state, at most once a second; the others use the view it left, and a read Redis
cannot answer keeps the last view (the breaker never raises).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from worker.settings import get_settings
from worker.stores.connection import get_redis, key, run_script, text_of

# KEYS[1]: the target's state hash. ARGV: now, threshold, base cool-down, max cool-down,
# failures. Counts that many retryable failures and returns {open_until, failures}. A failure
# while the circuit is open is a straggler sent before it opened and is ignored; a failure
# after the cool-down ended is the probe's, and reopens the circuit for twice as long.
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
  n = redis.call('HINCRBY', KEYS[1], 'failures', tonumber(ARGV[5]))
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
        # target -> (a success was heard, failures heard after the last success)
        self._heard: dict[str, tuple[bool, int]] = {}
        self._lock = threading.Lock()
        self._reading: set[str] = set()
        self._unwritten: dict[str, tuple[bool, int]] = {}

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
        if view is not None and now - view[2] <= _CACHE_SECONDS:
            return view[0], view[1]
        with self._lock:  # one reader per target; the others keep the view it replaces
            if target in self._reading:
                return (view[0], view[1]) if view else (0.0, 0)
            self._reading.add(target)
        try:
            until_raw, failures_raw = self.redis.hmget(self._key(target), "open_until", "failures")
            view = (
                float(text_of(until_raw)) if until_raw else 0.0,
                int(text_of(failures_raw)) if failures_raw else 0,
                now,
            )
        except redis.RedisError:  # keep what was known; ask again in a second
            view = (view[0], view[1], now) if view else (0.0, 0, now)
        finally:
            with self._lock:
                self._reading.discard(target)
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
        try:
            probe = self.redis.set(
                self._key(target) + ":probe", "1", nx=True, ex=max(1, int(self.policy.cooldown))
            )
        except redis.RedisError:
            probe = None
        return None if probe else now + self.policy.cooldown

    def close(self, target: str) -> None:
        """Close the target's circuit at once, for every worker (an operator's word)."""
        self.redis.delete(self._key(target), self._key(target) + ":probe")
        self._view[target] = (0.0, 0, time.time())

    def success(self, target: str) -> bool:
        """Note an answer that was not a failure of the target (written by `write`); say
        whether there is anything to write (not when this worker knows the circuit closed and
        heard no failure since)."""
        view = self._view.get(target)
        with self._lock:
            heard = self._heard.get(target)
            if view is not None and not (view[0] or view[1]) and not (heard and heard[1]):
                return False
            self._heard[target] = (True, 0)
            return True

    def failure(self, target: str) -> None:
        """Note a retryable failure of the target (written by `write`)."""
        with self._lock:
            recovered, failures = self._heard.get(target, (False, 0))
            self._heard[target] = (recovered, failures + 1)

    def heard(self) -> bool:
        """Whether outcomes wait to be written."""
        return bool(self._heard)

    def write(self, pipe: Any) -> Callable[[list[Any]], None]:
        """Queue on `pipe` what was heard since the last write, per target (a DEL when the
        target recovered and this worker's view says it had failed, one script call for the
        failures since). Returns what takes the pipe's replies (the last ones, in order) to
        update the view; `unwrite` puts the outcomes back if the pipe failed. A recovery is
        written when this worker's view says the target failed, or has no view (Redis may
        hold failures another worker counted, or the probe this worker just sent)."""
        with self._lock:
            heard, self._heard = self._heard, {}
        self._unwritten = heard
        now = time.time()
        for target, (recovered, _) in heard.items():
            view = self._view.get(target)  # none after a probe: it may close the circuit
            if recovered and (view is None or view[0] or view[1]):
                pipe.delete(self._key(target), self._key(target) + ":probe")
            if recovered:
                self._view[target] = (0.0, 0, now)
        failing = [target for target, (_, failures) in heard.items() if failures]
        policy = self.policy
        for target in failing:  # after every DEL: their replies are the pipe's last ones
            args = [now, policy.threshold, policy.cooldown, policy.max_cooldown]
            args.append(heard[target][1])
            run_script(self._fail, [self._key(target)], args, pipe)

        def read(replies: list[Any]) -> None:
            tail = replies[len(replies) - len(failing) :] if failing else []
            for target, (until, failures) in zip(failing, tail, strict=True):
                self._view[target] = (float(text_of(until)), int(text_of(failures)), now)

        return read

    def unwrite(self) -> None:
        """The last `write` did not reach Redis: hear its outcomes again."""
        with self._lock:
            for target, (recovered, failures) in self._unwritten.items():
                later = self._heard.get(target)
                if later is None:
                    self._heard[target] = (recovered, failures)
                elif not later[0]:  # failures heard since add to these
                    self._heard[target] = (recovered, failures + later[1])
            self._unwritten = {}
