"""Per-target outcome counters and the delivered-event_id memory that stops duplicate posts."""

from __future__ import annotations

import redis

from worker.redisconn import get_redis, key, text_of
from worker.settings import get_settings

OUTCOMES = ("delivered", "skipped", "duplicate", "retried", "dead")


class Counters:
    """Counts outcomes per target in Redis hashes, shared by every worker."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()

    def incr(self, target: str | None, outcome: str, amount: int = 1) -> None:
        self.redis.hincrby(key("stats", target or "-"), outcome, amount)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{target: {outcome: count}} for every target that has counted anything."""
        prefix = key("stats", "")
        result: dict[str, dict[str, int]] = {}
        for name in self.redis.scan_iter(match=prefix + "*", count=500):
            values = self.redis.hgetall(name)
            result[text_of(name)[len(prefix) :]] = {text_of(k): int(v) for k, v in values.items()}
        return result


class DeliveredLog:
    """Remembers delivered event ids for RELAY_DEDUP_WINDOW seconds."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()

    def _key(self, target: str, event_id: str) -> str:
        return key("done", target, event_id)

    def seen(self, target: str, event_id: str) -> bool:
        return bool(self.redis.exists(self._key(target, event_id)))

    def mark(self, target: str, event_id: str) -> None:
        window = int(get_settings().dedup_window)
        if window > 0:
            self.redis.set(self._key(target, event_id), "1", ex=window)
