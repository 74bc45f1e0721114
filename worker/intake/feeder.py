"""The feeder: a thread in every worker that takes bundles from the inbox and delivers them in
the worker's own lanes, without a broker round trip.

A bundle is sized by the backlog, not by a fixed wait: when every lane is idle the feeder takes
what is in the inbox at once (a lone event travels alone, immediately); while other bundles
are in flight the next one waits a few milliseconds for company, and while every lane is busy
the inbox fills, so the next bundle takes up to RELAY_BATCH of it. An item stays in Redis until
it is settled: it moves from the inbox into a lane (`worker.intake.inflight`) and leaves it
only after its delivery was recorded, so a worker killed mid-bundle loses nothing (its lanes
go back to the inbox when its lease runs out). Whatever an item holds (not UTF-8, not JSON,
too big, too deep) it ends delivered, parked or as a dead letter; no item stops the feeder.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis

from tasks.envelope import Envelope
from worker.intake.inflight import (
    LEASE,
    TAKE,
    lane_keys,
    lane_name,
    lanes_key,
    recover_orphans,
)
from worker.intake.parsing import parse_item, store_invalid, unwrap
from worker.settings import get_settings
from worker.stores.connection import bytes_of, key

log = logging.getLogger("relay.inbox")
T = TypeVar("T")

BLOCK = 1.0  # seconds BLMOVE waits for a first item; bounds how long stop() takes
RECOVER_EVERY = 10.0  # seconds between looks for dead workers' lanes
MAX_PAUSE = 5.0  # cap on the wait after an error: Redis may be down a while
GROW = 0.003
"""Seconds the next bundle waits for company while another lane is busy: at moderate rates a
bundle per event would cost more CPU than the events; an idle worker sends a lone event at
once."""

Deliver = Callable[[list[Envelope]], object]
"""Delivers a bundle, each envelope settled on its own (raises redis.RedisError when the
outcomes could not be recorded: the lane keeps the items and the bundle is delivered again)."""


class Stopped(Exception):
    """The worker is stopping and Redis is away: the lane keeps its items for another worker."""


class Feeder:
    """Takes bundles of up to `bundle_size` from the inbox into `lanes` lanes and delivers
    each in a thread of its own."""

    def __init__(
        self,
        inbox_client: redis.Redis,
        deliver: Deliver,
        owner: str,
        lanes: int,
        bundle_size: int,
    ) -> None:
        self.redis = inbox_client  # a raw client: items are read as the bytes producers wrote
        self.deliver = deliver
        self.owner = owner
        self.bundle_size = max(1, bundle_size)
        self.inbox, self.ids = key("inbox"), key("ids")
        self.lease = key("inflight-lease", owner)
        self.max_bytes = get_settings().max_event_bytes
        self._take = self.redis.register_script(TAKE)
        self._free: queue.Queue[int] = queue.Queue()
        for lane in range(max(1, lanes)):
            self._free.put(lane)
        self.lanes = max(1, lanes)
        self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="relay-lane")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renew_at = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-feeder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Take nothing more, let the lanes finish (up to `timeout` s); say whether they did.
        Only then is the lease given up: a lane still busy keeps it until it runs out."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=BLOCK + 5)
        deadline = time.monotonic() + timeout
        while self._free.qsize() < self.lanes and time.monotonic() < deadline:
            time.sleep(0.05)
        finished = self._free.qsize() == self.lanes
        if finished:
            with contextlib.suppress(redis.RedisError):  # else the lease simply runs out
                self.redis.delete(self.lease)
        return finished

    def take(self, lane: int, block: float) -> list[bytes]:
        """Move a bundle into `lane`, waiting up to `block` s for a first item; its items."""
        items_key, _, since = lane_keys(lane_name(self.owner, lane))
        self._renew_lease()
        if block > 0:
            # Redis takes a decimal timeout; the stubs say int, but int(0.5) = 0 blocks forever.
            timeout: Any = block
            first = self.redis.blmove(self.inbox, items_key, timeout, "LEFT", "RIGHT")
        else:  # BLMOVE with 0 would wait forever: a caller asking not to wait means it
            first = self.redis.lmove(self.inbox, items_key, "LEFT", "RIGHT")
        # Nothing came: the lane is still read, for an item whose BLMOVE reply was lost (a
        # dropped connection, a failover) or whose removal a failover undid; an idle lane
        # would otherwise hold it, leased, for good. One call per idle second.
        wanted = self.bundle_size - 1 if first is not None else 0
        keys = [self.inbox, items_key, since, self.ids]
        more = self._take(keys=keys, args=[wanted, self.max_bytes, time.time()])
        return [bytes_of(item) for item in more]

    def deliver_lane(self, lane: int, items: list[bytes]) -> None:
        """Deliver a lane's bundle and empty the lane; on Redis trouble, again, until done."""
        items_key, _, since = lane_keys(lane_name(self.owner, lane))
        try:
            envelopes = self._retrying(lambda: self._envelopes(items))
            self._retrying(lambda: self.deliver(envelopes) if envelopes else None)
            self._retrying(lambda: self.redis.delete(items_key, since))
        except Stopped:
            log.warning("inbox: stopping with a bundle undelivered; it returns to the inbox")
        except Exception as exc:  # a bug: never a stuck lane; the items become dead letters
            log.error("inbox: a bundle failed (%s); its items are dead letters", type(exc).__name__)
            with contextlib.suppress(redis.RedisError):  # else they return with the lease
                self._give_up(items, type(exc).__name__)
                self.redis.delete(items_key, since)
        self._free.put(lane)

    def _give_up(self, items: list[bytes], why: str) -> None:
        for item in items:
            text = unwrap(item)[1].decode("utf-8", "backslashreplace")
            store_invalid(f"internal error delivering this item ({why})", text)

    def _envelopes(self, items: list[bytes]) -> list[Envelope]:
        """The events among the items, in envelopes with the items' ids; one that cannot be
        read becomes an `invalid` dead letter here."""
        envelopes = []
        for item in items:
            item_id, payload = unwrap(item)
            problem, event = parse_item(payload, self.max_bytes, "an inbox item")
            if problem is None:
                envelopes.append(Envelope(event, id=item_id or uuid.uuid4().hex))
            else:
                store_invalid(problem, event)
                log.warning("inbox: %s; stored as an invalid dead letter", problem.split(":")[0])
        return envelopes

    def _retrying(self, step: Callable[[], T]) -> T:
        """`step`, tried again while Redis is away (until the worker stops)."""
        failures = 0
        while True:
            try:
                return step()
            except redis.RedisError as exc:
                failures += 1
                if self._stop.is_set() and failures > 3:
                    raise Stopped from None
                log.warning("inbox: Redis unavailable (%s); trying again", type(exc).__name__)
                time.sleep(min(MAX_PAUSE, 0.1 * 2**failures))

    def _renew_lease(self) -> None:
        # Renewed before taking anything, so items never sit in an unleased lane; a sixth of
        # its life apart, so a busy feeder does not pay a round trip per bundle.
        # The lanes join the set with it, so recovery finds them without a SCAN (and again
        # after a Redis that lost the set).
        if time.monotonic() >= self._renew_at:
            names = [lane_name(self.owner, lane) for lane in range(self.lanes)]
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self.lease, self.owner, ex=LEASE)
            pipe.sadd(lanes_key(), *names)
            pipe.execute()
            self._renew_at = time.monotonic() + LEASE / 6

    def _run(self) -> None:
        failures = 0
        next_recovery = time.monotonic() + RECOVER_EVERY
        while not self._stop.is_set():
            try:
                lane = self._free.get(timeout=BLOCK)
            except queue.Empty:
                with contextlib.suppress(redis.RedisError):  # lanes busy long: keep the lease
                    self._renew_lease()
                continue
            if self._free.qsize() < self.lanes - 1:  # others in flight: let this one grow
                self._stop.wait(GROW)
            try:
                if time.monotonic() >= next_recovery:
                    next_recovery = time.monotonic() + RECOVER_EVERY
                    recover_orphans(self.redis)
                items = self.take(lane, BLOCK)
                failures = 0
            except Exception as exc:  # keep going: a stopped feeder strands the whole inbox
                self._free.put(lane)
                failures += 1
                why = str(exc) if isinstance(exc, redis.RedisError) else "a bug"
                log.warning("inbox feeder: %s (%s); trying again", type(exc).__name__, why)
                self._stop.wait(min(MAX_PAUSE, 0.1 * 2**failures))
                continue
            if items:
                self._pool.submit(self.deliver_lane, lane, items)
            else:
                self._free.put(lane)
