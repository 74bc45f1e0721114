"""Per-target outcome counters in Redis, shared by every worker (for `relay status`)."""

from __future__ import annotations

import redis

from worker.stores.connection import get_redis, key, scan_match, text_of

# Outcomes that end an event's story; "retried" and "deferred" are chapters, not endings.
FINAL_OUTCOMES = ("delivered", "skipped", "duplicate", "stale")


def settled_events(snapshot: dict[str, dict[str, int]]) -> int:
    """How many events (or parts of events) reached a final outcome, over all targets."""
    return sum(
        n
        for counts in snapshot.values()
        for outcome, n in counts.items()
        if outcome in FINAL_OUTCOMES or outcome.startswith("dead:")
    )


class Counters:
    """Counts outcomes per target in Redis hashes, shared by every worker (family "receipts":
    the ingress's receipts per source)."""

    def __init__(self, client: redis.Redis | None = None, family: str = "stats") -> None:
        self.redis = client or get_redis()
        self.family = family

    def incr(
        self, target: str | None, outcome: str, amount: int = 1, pipe: redis.Redis | None = None
    ) -> None:
        """Count an outcome, or queue the count on `pipe` to go with other writes."""
        (pipe or self.redis).hincrby(key(self.family, target or "-"), outcome, amount)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{target: {outcome: count}} for every target that has counted anything."""
        prefix = key(self.family, "")
        result: dict[str, dict[str, int]] = {}
        for name in self.redis.scan_iter(match=scan_match(self.family, ""), count=500):
            values = self.redis.hgetall(name)
            result[text_of(name)[len(prefix) :]] = {text_of(k): int(v) for k, v in values.items()}
        return result
