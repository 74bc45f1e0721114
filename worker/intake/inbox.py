"""The inbox: the plain Redis list producers push raw events onto, in any language.

One JSON text per item; producers need neither Celery nor kombu (`RPUSH relay:inbox TEXT`).
Every worker's bundler (`worker.intake.bundler`) moves what waits here into Celery messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import redis

from worker.stores.connection import get_redis, key

PUSH_CHUNK = 1000  # items per RPUSH: one round trip each, without one huge command


class Inbox:
    """The list producers push raw events onto (JSON texts, one event per item)."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self.key = key("inbox")

    def push(self, items: Iterable[str]) -> int:
        """Append JSON texts, a thousand per round trip; return how many."""
        count = 0
        it = iter(items)
        while chunk := list(islice(it, PUSH_CHUNK)):
            self.redis.rpush(self.key, *chunk)
            count += len(chunk)
        return count

    def depth(self) -> int:
        """Events waiting to be bundled."""
        return int(self.redis.llen(self.key))
