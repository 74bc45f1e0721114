"""The inbox: the plain Redis list producers push raw events onto, in any language.

One JSON text per item; producers need neither Celery nor kombu (`RPUSH relay:inbox TEXT`).
Every worker's feeder (`worker.intake.feeder`) takes what waits here into its lanes.
The inbox is bounded (RELAY_INBOX_MAX): past it, `relay push` and `push_events` refuse with
`InboxFull` rather than let an outage of every worker fill Redis until it refuses everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import redis

from worker.settings import get_settings
from worker.stores.bounds import InboxFull as InboxFull  # its home is the stores; named here too
from worker.stores.connection import get_redis, key

PUSH_CHUNK = 1000  # items per round trip, without one huge command

# KEYS[1]: the inbox. ARGV[1]: its bound; ARGV[2..]: items. Pushes what fits, returns how many.
_PUSH = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1])
local n = math.min(room, #ARGV - 1)
if n < 1 then return 0 end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2, n + 1))
return n
"""


class Inbox:
    """The list producers push raw events onto (JSON texts, one event per item)."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self.key = key("inbox")
        self.limit = get_settings().inbox_max
        self._push = self.redis.register_script(_PUSH)

    def push(self, items: Iterable[str | bytes]) -> int:
        """Append JSON texts, a thousand per round trip; return how many. Raises `InboxFull`
        (saying how many went in) when the bound is reached."""
        count = 0
        it = iter(items)
        while chunk := list(islice(it, PUSH_CHUNK)):
            pushed = int(self._push(keys=[self.key], args=[self.limit, *chunk]))
            count += pushed
            if pushed < len(chunk):
                raise InboxFull(count, self.limit)
        return count

    def depth(self) -> int:
        """Events waiting to be bundled: the inbox's and a dead worker's taken-back items."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.key)
        pipe.llen(key("inbox", "resumed"))  # `worker.intake.inflight.resumed_key`
        return sum(int(n) for n in pipe.execute())
