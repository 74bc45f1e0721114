"""Per-target outcome counters in Redis, shared by every worker (for `relay status`)."""

from __future__ import annotations

from collections.abc import Iterable

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

    def snapshot(self, names: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        """{target: {outcome: count}} for `names` (one pipelined read), or for every target
        that has counted anything, found by a SCAN of the whole keyspace: for the operator's
        `relay status`, never for what runs every few seconds (a metrics scrape), since the
        keyspace holds a message hash per message id of the dedup window."""
        prefix = key(self.family, "")
        if names is None:
            found = self.redis.scan_iter(match=scan_match(self.family, ""), count=5000)
            keys = [text_of(name) for name in found]
        else:
            keys = [key(self.family, name) for name in names]
        pipe = self.redis.pipeline(transaction=False)
        for name in keys:
            pipe.hgetall(name)
        return {
            name[len(prefix) :]: {text_of(k): int(v) for k, v in values.items()}
            for name, values in zip(keys, pipe.execute(), strict=True)
            if values
        }
