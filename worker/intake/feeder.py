"""The feeder: a thread in every worker that takes bundles from the inbox and delivers them in
the worker's own lanes, without a broker round trip.

A bundle is sized by the backlog, not by a fixed wait: when every lane is idle the feeder takes
what is in the inbox at once (a lone event travels alone, immediately); while other bundles
are in flight the next one waits a few milliseconds for company, and while every lane is busy
the inbox fills, so the next bundle takes up to RELAY_BATCH of it. An item stays in Redis until
it is settled: it moves from the inbox into a lane (`worker.intake.inflight`) and leaves it
only after its delivery was recorded, so a worker killed mid-bundle loses nothing (its lanes
are taken back when its lease runs out). A thread of its own renews the lease for as
long as a lane works, also while the worker stops (SIGTERM): a lane that outlives the feeder
thread keeps its lease. Whatever an item holds (not UTF-8, not JSON, too big, too deep) it
ends delivered, parked or as a dead letter; no item stops the feeder.
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
from worker.cells.cells import get_cells
from worker.cells.forward import Forwarder
from worker.intake.inflight import (
    LOOKS,
    RENEWALS,
    TAKE,
    lane_keys,
    lane_name,
    lanes_key,
    recover_orphans,
    recovery_turn,
    resumed_key,
)
from worker.intake.parsing import parse_item, store_invalid, unwrap
from worker.settings import get_settings
from worker.stores.connection import bytes_of, key
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.ledger import EventLedger

log = logging.getLogger("relay.inbox")
T = TypeVar("T")

BLOCK = 1.0  # seconds BLMOVE waits for a first item; bounds how long stop() takes
MAX_PAUSE = 5.0  # cap on the wait after an error: Redis may be down a while
QUIET = 1.0
"""Seconds after a lane found nothing waiting during which it waits with BLMOVE without
asking the script first; so each lane is read, and a dead worker's items are taken, at least
about once a second while the inbox is quiet."""
GROW = 0.003
"""Seconds the next bundle waits for company while another lane is busy: at moderate rates a
bundle per event would cost more CPU than the events; an idle worker sends a lone event at
once."""

Deliver = Callable[[list[Envelope], set[str]], object]
"""Delivers a bundle, each envelope settled on its own, adding the ids of envelopes whose
outcomes were recorded to the set (raises redis.RedisError when nothing could be recorded:
the lane keeps the items and the bundle is delivered again)."""


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
        settings = get_settings()
        self.max_bytes = settings.max_event_bytes
        self.lease_seconds = max(1, round(settings.visibility_timeout))
        self._take = self.redis.register_script(TAKE)
        cells = get_cells()
        self.forwarder = Forwarder(cells) if cells.count > 1 else None
        self._free: queue.Queue[int] = queue.Queue()
        for lane in range(max(1, lanes)):
            self._free.put(lane)
        self.lanes = max(1, lanes)
        self._quiet_until = [0.0] * self.lanes  # monotonic time until which a lane only waits
        self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="relay-lane")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keeper: threading.Thread | None = None

    def start(self) -> None:
        self._renew_lease()
        self._keeper = threading.Thread(target=self._keep_lease, name="relay-lease", daemon=True)
        self._keeper.start()
        self._thread = threading.Thread(target=self._run, name="relay-feeder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Take nothing more, let the lanes finish (up to `timeout` s); say whether they did.
        The lease is renewed as long as a lane works, and given up when the last one ends."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=BLOCK + 5)
        deadline = time.monotonic() + timeout
        while not self._idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._idle() and self._keeper is not None:  # it gives the lease up as it ends
            self._keeper.join(timeout=5)
        return self._idle()

    def _idle(self) -> bool:
        return self._free.qsize() == self.lanes

    def _keep_lease(self) -> None:
        """Renew the lease every fifth of its life, and look for dead workers' lanes every
        tenth (busy lanes or not), until the feeder stopped and every lane is idle; then give
        the lease up (if Redis cannot be told, it simply runs out)."""
        look, renew = self.lease_seconds / LOOKS, self.lease_seconds / RENEWALS
        renewed = time.monotonic()
        while not (self._stop.is_set() and self._idle()):
            try:
                if time.monotonic() - renewed >= renew:
                    self._renew_lease()
                    renewed = time.monotonic()
                if not self._stop.is_set():
                    self._recover()
            except redis.RedisError as exc:  # tried again at the next look
                log.warning("inbox: cannot renew the lease or look for lanes (%s)", exc)
            except Exception as exc:  # a bug: the lease must still be renewed
                log.error("inbox: lease keeper: %s", type(exc).__name__)
            time.sleep(0.05 if self._stop.is_set() else look)
        with contextlib.suppress(redis.RedisError):
            self.redis.delete(self.lease)

    def take(self, lane: int, block: float) -> list[bytes]:
        """Move a bundle into `lane`, waiting up to `block` s for a first item; its items.

        The script first: it reads the lane (for an item whose BLMOVE reply was lost, or whose
        removal a failover undid: an idle lane would otherwise hold it, leased, for good) and
        takes what waits, a dead worker's items before the inbox's. Only when nothing waits
        does BLMOVE wait for the inbox, and the script then takes the item BLMOVE moved (one
        script call a bundle while busy). A lane whose script found nothing waiting less
        than QUIET s ago goes straight to BLMOVE: at moderate rates events come one at a
        time, and asking first would cost each a round trip more."""
        name = lane_name(self.owner, lane)
        items_key, _, since = lane_keys(name)
        keys = [self.inbox, items_key, since, self.ids, self.lease, lanes_key(), resumed_key()]
        args: list[str | float] = [self.bundle_size, self.max_bytes, time.time(), self.owner]
        args += [self.lease_seconds, name]
        if time.monotonic() >= self._quiet_until[lane] or block <= 0:
            held = self._take(keys=keys, args=args)
            if held or block <= 0:  # BLMOVE with 0 would wait forever
                return [bytes_of(item) for item in held]
            self._quiet_until[lane] = time.monotonic() + QUIET
        # Redis takes a decimal timeout; the stubs say int, but int(0.5) = 0 blocks forever.
        timeout: Any = block
        if self.redis.blmove(self.inbox, items_key, timeout, "LEFT", "RIGHT") is None:
            return []
        args[2] = time.time()
        return [bytes_of(item) for item in self._take(keys=keys, args=args)]

    def deliver_lane(self, lane: int, items: list[bytes]) -> None:
        """Deliver a lane's bundle and empty the lane; on Redis trouble, again, until done."""
        items_key, _, since = lane_keys(lane_name(self.owner, lane))
        settled: set[str] = set()
        envelopes: list[Envelope] | None = None
        try:
            mine = self._retrying(lambda: self._forward(items))
            envelopes = self._retrying(lambda: self._envelopes(mine))
            ready = envelopes
            self._retrying(lambda: self.deliver(ready, settled) if ready else None)
            self._retrying(lambda: self.redis.delete(items_key, since))
        except Stopped:
            log.warning("inbox: stopping with a bundle undelivered; it returns to the inbox")
        except Exception as exc:  # a bug: never a stuck lane; what is not settled is given up
            why = type(exc).__name__
            log.error("inbox: a bundle failed (%s); what it had not settled is dead letters", why)
            with contextlib.suppress(redis.RedisError):  # else they return with the lease
                self._give_up(items, envelopes, settled, why)
                self.redis.delete(items_key, since)
        self._free.put(lane)

    def _give_up(
        self, items: list[bytes], envelopes: list[Envelope] | None, settled: set[str], why: str
    ) -> None:
        """Dead letters for what a bug left unsettled (the items themselves if they could not
        even be read); their claims are dropped, so that a replay can post them."""
        problem = f"internal error delivering this item ({why})"
        if envelopes is None:
            for item in items:
                store_invalid(problem, unwrap(item)[1].decode("utf-8", "backslashreplace"))
            return
        store, ledger = DeadLetterStore(), EventLedger()
        for envelope in (e for e in envelopes if e.id not in settled):
            event = envelope.event
            store.add(DeadLetter("invalid", problem, event, envelope=envelope.id))
            found = event if isinstance(event, dict) else {}
            target, event_id = found.get("target"), found.get("event_id")
            mids = found.get("message_ids")
            if isinstance(target, str) and isinstance(event_id, str) and isinstance(mids, list):
                ids = [m for m in mids if isinstance(m, str)]
                ledger.forget(target, event_id, ids, envelope.id)

    def _forward(self, items: list[bytes]) -> list[bytes]:
        """The items of this cell; the others pushed onto their own cell's inbox first."""
        if self.forwarder is None:
            return items
        kept, away = self.forwarder.split([unwrap(item)[1] for item in items])
        if away:
            self.forwarder.send(away)
        return [items[index] for index in kept]

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
        # The lanes join the set with it, so recovery finds them without a SCAN (and again
        # after a Redis that lost the set).
        names = [lane_name(self.owner, lane) for lane in range(self.lanes)]
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.lease, self.owner, ex=self.lease_seconds)
        pipe.sadd(lanes_key(), *names)
        pipe.execute()

    def _recover(self) -> None:
        """Look for dead workers' lanes, if it is this worker's turn."""
        every = self.lease_seconds / LOOKS
        if recovery_turn(self.redis, self.owner, every):
            recover_orphans(self.redis, confirm=self.lease_seconds / RENEWALS)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                lane = self._free.get(timeout=BLOCK)
            except queue.Empty:
                continue
            if self._free.qsize() < self.lanes - 1:  # others in flight: let this one grow
                self._stop.wait(GROW)
            try:
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
