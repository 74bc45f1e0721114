"""The bundler: a thread in every worker that turns the inbox into Celery messages.

It is the reliable-queue pattern: an item moves atomically from the inbox to the bundler's own
inflight list and leaves it only after its bundle was published, so a crash never loses it (at
worst it is published twice; the idempotency claim absorbs the copy). A bundler holds a lease
while alive; a dead one's inflight list goes back to the front of the inbox.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from worker.intake.parsing import parse_text, store_invalid
from worker.settings import get_settings
from worker.stores.connection import key, scan_match, text_of

log = logging.getLogger("relay.inbox")

BLOCK = 1.0  # seconds BLMOVE waits for a first item; bounds how long stop() takes
LEASE = 30  # seconds a bundler's lease outlives its last round: far longer than any round
RECOVER_EVERY = 10.0  # seconds between looks for dead bundlers' inflight lists
MAX_PAUSE = 5.0  # cap on the wait after an error: Redis or the broker may be down a while

# LPOP with a count is atomic with the RPUSH, so an item is always in one list or the other.
# RPUSH in slices: Lua's unpack() fails on a few thousand arguments.
_TAKE = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
return items
"""

# The lease is checked inside the script so that a bundler renewing it at the same moment
# cannot lose its items. Tail of inflight to head of inbox keeps their order, oldest first.
_RECOVER = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local moved = 0
while redis.call('LMOVE', KEYS[1], KEYS[3], 'RIGHT', 'LEFT') do moved = moved + 1 end
return moved
"""


class Bundler:
    """A thread that publishes what waits in the inbox, up to `bundle_size` events a bundle."""

    def __init__(
        self,
        inbox_client: redis.Redis,
        publish: Callable[[list[Any]], object],
        owner: str,
        bundle_size: int,
        linger: float,
    ) -> None:
        self.redis = inbox_client
        self.publish = publish
        self.owner = owner
        self.bundle_size = max(1, bundle_size)
        self.linger = linger
        self.inbox = key("inbox")
        self.inflight = key("inflight", owner)
        self.lease = key("inflight-lease", owner)
        self._take = self.redis.register_script(_TAKE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renew_at = 0.0
        self.max_bytes = get_settings().max_event_bytes
        self._inflight_empty = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-bundler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=BLOCK + 5)

    def bundle_once(self, block: float) -> int:
        """Publish one round's events (left-overs of a failed round first); return how many."""
        # Renewed before taking anything, so items never sit in an unleased inflight list; a
        # sixth of its life apart, so a busy bundler does not pay a round trip per round.
        if time.monotonic() >= self._renew_at:
            self.redis.set(self.lease, self.owner, ex=LEASE)
            self._renew_at = time.monotonic() + LEASE / 6
        items: list[str] = []
        if not self._inflight_empty:  # a round failed (or this is the first): left-overs first
            items = [text_of(i) for i in self.redis.lrange(self.inflight, 0, -1)]
        self._inflight_empty = False
        if not items:
            items = self._collect(block)
        if not items:
            self._inflight_empty = True
            return 0
        for start in range(0, len(items), self.bundle_size):
            events = self._parse(items[start : start + self.bundle_size])
            if events:
                self.publish(events)
        # Only now: a crash before this line leaves the items to be published again.
        self.redis.delete(self.inflight)
        self._inflight_empty = True
        return len(items)

    def _parse(self, items: list[str]) -> list[Any]:
        """The events among `items`. One that is not JSON, or too big, becomes an `invalid`
        dead letter here, as `relay push` does: producers that push directly get the same
        treatment (a repeat after a failed round stores it again: kept twice, never lost)."""
        events = []
        for item in items:
            problem, event = parse_text(item, self.max_bytes, "an inbox item")
            if problem is None:
                events.append(event)
            else:
                store_invalid(problem, event)
                log.warning("inbox: %s; stored as an invalid dead letter", problem.split(":")[0])
        return events

    def _collect(self, block: float) -> list[str]:
        """Move up to bundle_size items into the inflight list, waiting for the first one."""
        if block > 0:
            # Redis takes a decimal timeout; the stubs say int, but int(0.5) = 0 blocks forever.
            timeout: Any = block
            first = self.redis.blmove(self.inbox, self.inflight, timeout, "LEFT", "RIGHT")
        else:  # BLMOVE with 0 would wait forever: a caller asking not to wait means it
            first = self.redis.lmove(self.inbox, self.inflight, "LEFT", "RIGHT")
        if first is None:
            return []
        items = [text_of(first)]
        lingered = self.linger <= 0
        while len(items) < self.bundle_size:
            want = self.bundle_size - len(items)
            more = [text_of(i) for i in self._take(keys=[self.inbox, self.inflight], args=[want])]
            items += more
            if len(more) < want:  # the inbox ran dry
                if lingered:
                    break
                lingered = True
                # Once per bundle: events pushed one at a time but fast still travel
                # together, and a lone event waits only this long.
                time.sleep(self.linger)
        return items

    def _run(self) -> None:
        failures = 0
        next_recovery = time.monotonic() + RECOVER_EVERY
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_recovery:
                    next_recovery = time.monotonic() + RECOVER_EVERY
                    recover_orphans(self.redis)
                self.bundle_once(BLOCK)
                failures = 0
            except Exception as exc:  # keep going: a stopped bundler strands the whole inbox
                failures += 1
                # Redis errors say what broke; other messages (publishing errors) may quote
                # an event, which holds personal data: their type only.
                why = str(exc) if isinstance(exc, redis.RedisError) else "not published"
                log.warning(
                    "inbox bundler: %s (%s); events wait in %s, trying again",
                    type(exc).__name__,
                    why,
                    self.inflight,
                )
                self._stop.wait(min(MAX_PAUSE, 0.1 * 2**failures))
        # A clean stop hands anything still inflight to the other workers at once.
        with contextlib.suppress(redis.RedisError):  # else the lease simply runs out
            self.redis.delete(self.lease)


def recover_orphans(client: redis.Redis) -> int:
    """Put dead bundlers' inflight items back at the front of the inbox; return how many."""
    script = client.register_script(_RECOVER)
    inbox, prefix = key("inbox"), key("inflight", "")
    moved = 0
    for name in client.scan_iter(match=scan_match("inflight", ""), count=500):
        inflight = text_of(name)
        lease = key("inflight-lease", inflight[len(prefix) :])
        moved += int(script(keys=[inflight, lease, inbox]))
    if moved:
        log.warning("inbox: %d event(s) of stopped bundlers returned to the inbox", moved)
    return moved
