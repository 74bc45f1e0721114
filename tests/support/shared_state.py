"""What two releases share in one Redis, read the way a test needs it: the previous release's
in-flight lists, claims and done marks, retries parked twice, and whether the delivery queue
has drained."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from worker.stores.retries import RetrySchedule


@dataclass(frozen=True)
class Shared:
    redis_url: str
    prefix: str

    @contextmanager
    def client(self) -> Iterator[redis.Redis]:
        client = redis.Redis.from_url(self.redis_url)
        try:
            yield client
        finally:
            client.close()

    def old_lists(self, pid: int | None = None) -> dict[str, int]:
        """The previous release's in-flight lists (named by their worker only, no `|lane`),
        with their sizes; only the one of worker process `pid` if given."""
        with self.client() as client:
            found = client.scan_iter(match=f"{self.prefix}:inflight:*", count=1000)
            names = [n.decode() for n in found]
            old = [n for n in names if "|" not in n and (pid is None or n.endswith(f":{pid}"))]
            sizes = {n: int(client.llen(n)) for n in old}
        return {n: size for n, size in sizes.items() if size}

    def old_items(self) -> list[str]:
        """What the previous release's in-flight lists hold now (texts as pushed)."""
        with self.client() as client:
            return [i.decode() for n in self.old_lists() for i in client.lrange(n, 0, -1)]

    def old_marks(self, keys: dict[str, tuple[str, str]]) -> dict[str, str]:
        """The previous release's claim or done mark (`event:<target>:<event_id>`: "pending"
        or "done") of each message id in `keys` (message id -> (target, event_id))."""
        with self.client() as client:
            values = client.mget([f"{self.prefix}:event:{t}:{e}" for t, e in keys.values()])
        marks = zip(keys, values, strict=True)
        return {m: v.decode().split(":")[0] for m, v in marks if v}

    def twin_retries(self) -> set[str]:
        """Message ids parked twice under one envelope id: a pump killed between re-queueing
        a retry and removing it (its lease ran out, so another pump re-queued it again)."""
        parked = [e for e, _ in RetrySchedule().iter() if e is not None]
        twins = {i for i, n in Counter(e.id for e in parked).items() if n > 1}
        return set(_ids(e.event for e in parked if e.id in twins))

    def quiet(self, queue: str) -> bool:
        """Nothing waits in the delivery queue, unacknowledged, or in the retry schedule."""
        with self.client() as client:
            unacked = [v for v in client.hvals("unacked") if queue.encode() in v]
            waiting = client.llen(queue)
        return not unacked and not waiting and RetrySchedule().count() == 0


def _ids(events: Iterable[object]) -> Iterator[str]:
    for event in events:
        if isinstance(event, dict):
            yield from event.get("message_ids", [])
