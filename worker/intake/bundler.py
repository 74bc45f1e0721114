"""The bundler: a thread in every worker that turns the inbox into Celery messages.

It is the reliable-queue pattern (`worker.intake.inflight`): an item moves atomically from the
inbox to the bundler's own inflight list and leaves it only after its bundle was published, so
a crash never loses it (at worst it is published twice; the idempotency claims absorb the
copy). A bundler holds a lease while alive; a dead one's inflight list goes back to the front
of the inbox. Whatever an item holds (not UTF-8, not JSON, too big, too deep, an event that
cannot be serialized), it ends published or as an `invalid` dead letter: no item stops the
bundler, and none stays in its inflight list.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from kombu.exceptions import EncodeError

from worker.intake.inflight import LEASE, TAKE, inflight_keys, recover_orphans
from worker.intake.parsing import parse_item, store_invalid
from worker.settings import get_settings
from worker.stores.connection import bytes_of, key

log = logging.getLogger("relay.inbox")

BLOCK = 1.0  # seconds BLMOVE waits for a first item; bounds how long stop() takes
RECOVER_EVERY = 10.0  # seconds between looks for dead bundlers' inflight lists
MAX_PAUSE = 5.0  # cap on the wait after an error: Redis or the broker may be down a while


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
        self.redis = inbox_client  # a raw client: items are read as the bytes producers wrote
        self.publish = publish
        self.owner = owner
        self.bundle_size = max(1, bundle_size)
        self.linger = linger
        self.inbox = key("inbox")
        self.inflight, self.lease, self.since = inflight_keys(owner)
        self._take = self.redis.register_script(TAKE)
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
        items: list[bytes] = []
        if not self._inflight_empty:  # a round failed (or this is the first): left-overs first
            items = [bytes_of(i) for i in self.redis.lrange(self.inflight, 0, -1)]
        self._inflight_empty = False
        if not items:
            items = self._collect(block)
        if not items:
            self._inflight_empty = True
            return 0
        for start in range(0, len(items), self.bundle_size):
            self._publish(self._parse(items[start : start + self.bundle_size]))
        # Only now: a crash before this line leaves the items to be published again.
        self.redis.delete(self.inflight, self.since)
        self._inflight_empty = True
        return len(items)

    def _parse(self, items: list[bytes]) -> list[Any]:
        """The events among `items`. One that cannot be read becomes an `invalid` dead letter
        here, as in `relay push` (a repeat after a failed round stores it again: kept twice,
        never lost)."""
        events = []
        for item in items:
            problem, event = parse_item(item, self.max_bytes, "an inbox item")
            if problem is None:
                events.append(event)
            else:
                store_invalid(problem, event)
                log.warning("inbox: %s; stored as an invalid dead letter", problem.split(":")[0])
        return events

    def _publish(self, events: list[Any]) -> None:
        """Publish a bundle. If an event cannot be serialized, find the events that cannot
        travel and keep them as dead letters (the rest goes alone); any other failure is the
        broker's (kombu raises even AttributeError while a connection is torn down): the events
        wait in the inflight list for the next round."""
        if not events:
            return
        try:
            self.publish(events)
        except EncodeError as exc:
            if len(events) == 1:
                problem = f"an inbox item could not be published ({type(exc).__name__})"
                store_invalid(problem, events[0])
                log.warning("inbox: %s; stored as an invalid dead letter", problem)
                return
            for event in events:
                self._publish([event])

    def _collect(self, block: float) -> list[bytes]:
        """Move up to bundle_size items into the inflight list, waiting for the first one."""
        if block > 0:
            # Redis takes a decimal timeout; the stubs say int, but int(0.5) = 0 blocks forever.
            timeout: Any = block
            first = self.redis.blmove(self.inbox, self.inflight, timeout, "LEFT", "RIGHT")
        else:  # BLMOVE with 0 would wait forever: a caller asking not to wait means it
            first = self.redis.lmove(self.inbox, self.inflight, "LEFT", "RIGHT")
        if first is None:
            return []
        items = [bytes_of(first)]
        lingered = self.linger <= 0
        while True:  # at least once: the script also stamps when the inflight list began
            want = self.bundle_size - len(items)
            args = [want, self.max_bytes, time.time()]
            more = self._take(keys=[self.inbox, self.inflight, self.since], args=args)
            items += [bytes_of(i) for i in more]
            if len(items) >= self.bundle_size or (len(more) < want and lingered):
                return items
            if len(more) < want:  # the inbox ran dry: wait once for company
                lingered = True
                # Events pushed one at a time but fast still travel together, and a lone
                # event waits only this long.
                time.sleep(self.linger)

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
                # Redis errors say what broke; other messages may quote an event, which holds
                # personal data: their type only.
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
