"""The retry schedule: parked events wait in a Redis sorted set scored by when they fall due.

Nothing waits in worker memory, so a parked retry survives every worker's death and costs no
worker RAM; and no Celery countdown ever approaches the broker's visibility timeout (celery
#2599, #4400, #9849). Whichever worker is alive when an entry falls due claims it with a Lua
script that pushes its score one lease into the future, re-queues it, then removes it. A worker
that dies between claim and removal leaves the entry to be claimed again when the lease ends.

A member is the envelope's compact JSON (`Envelope.to_compact`: about 150 bytes beside the
event, against 260 for `to_dict`), so 100,000 parked events stay under 1 KB each in Redis;
members an older version parked in the long form are read, claimed and re-queued alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import redis

from tasks.envelope import Envelope, NewerFormat
from worker.stores.connection import get_redis, key, text_of

# Members of sorted set KEYS[1] due by ARGV[1], at most ARGV[2], re-dated to ARGV[3] (a lease).
CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
end
return due
"""

# Members ARGV[3..] of KEYS[1] made due at ARGV[1], unless due by ARGV[2] (or gone): a pump's
# claim dates a member one lease ahead, so one due that soon may be being re-queued right now.
BRING_FORWARD = """
local n = 0
for i = 3, #ARGV do
  local due = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if due and tonumber(due) > tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
    n = n + 1
  end
end
return n
"""


class RetrySchedule:
    """Park envelopes until a time; claim the due ones exactly once per lease."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self.key = key("retries")
        self._claim = self.redis.register_script(CLAIM_DUE)
        self._forward = self.redis.register_script(BRING_FORWARD)

    def park(self, envelope: Envelope, due: float, pipe: redis.Redis | None = None) -> None:
        """Park until `due`, or queue that on `pipe` to go with other writes."""
        (pipe or self.redis).zadd(self.key, {_member(envelope): due})

    def claim_due(self, now: float, limit: int, lease: float) -> list[str]:
        """Members due by `now`, hidden for `lease` seconds while the caller re-queues them."""
        members = self._claim(keys=[self.key], args=[now, limit, now + lease])
        return [text_of(m) for m in members]

    def redate(self, due: dict[str, float]) -> None:
        """Move members that are still parked to new due times."""
        if due:
            self.redis.zadd(self.key, due, xx=True)

    def release(self, members: list[str]) -> None:
        if members:
            self.redis.zrem(self.key, *members)

    def count(self) -> int:
        return int(self.redis.zcard(self.key))

    def bring_forward(self, members: list[str], due: float, after: float) -> int:
        """Make `members` due at `due` (`relay retries now`), except those due by `after`
        (at least one lease from now: a pump may be re-queueing them). How many moved."""
        if not members:
            return 0
        return int(self._forward(keys=[self.key], args=[due, after, *members]))

    def iter(self) -> Iterator[tuple[Envelope | None, float]]:
        """Every parked envelope with its due time (None for one a newer relay parked in a
        format this one does not know)."""
        for _, envelope, due in self.entries():
            yield envelope, due

    def entries(self) -> Iterator[tuple[str, Envelope | None, float]]:
        """`iter` with each envelope's member, as the schedule stores it."""
        for member, score in self.redis.zscan_iter(self.key, count=500):
            text = text_of(member)
            try:
                yield text, Envelope.from_dict(json.loads(text)), float(score)
            except NewerFormat:
                yield text, None, float(score)


def _member(envelope: Envelope) -> str:
    """The envelope as the schedule stores it: compact JSON, unique by the envelope's id."""
    return json.dumps(envelope.to_compact(), ensure_ascii=False, separators=(",", ":"))
