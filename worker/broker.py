"""kombu's Redis transport with three changes: losing Redis must not crash the worker, nor lose
a message it was receiving, and a publish must not build a Redis client.

When the broker connection drops, kombu closes the channel and tries to push the worker's
unacknowledged messages back at once. With Redis gone (or the connection already torn down,
kombu 5.7 raises AttributeError on `conninfo.hostname`), that attempt raised out of the
consumer and Celery stopped the worker as an "unrecoverable error". Those messages are safe in
Redis's unacked index anyway: the visibility sweep returns them. So a failed attempt is logged
and left to the sweep. The same holds for a task that finishes (acks) just after the
connection dropped: kombu raised AttributeError out of the event loop for that too.

For every publish (and every ack), kombu 5.7 builds a new `redis.Redis` around its connection
pool: a quarter of a publish's CPU, measured with cProfile, went to registering 169 response
callbacks on that throw-away client. `redis.Redis` is thread-safe over its pool, so the channel
keeps one per pool.

kombu takes a message off the queue (BRPOP) before it records it in the `unacked` hash. A
Redis that went away in between (a restart, a Sentinel failover) dropped the message: it lived
only in the worker, and the broken connection took it. Recording it is now tried again until
Redis answers (up to APPEND_PATIENCE seconds); the Sentinel failover test lost a bundle this way
in about one run in three under load before.

A live worker renews its unacked messages: every fifth of the visibility timeout, a thread
moves the index score (`unacked_index`) of each message it holds to now, so the visibility
timeout can be short (a dead worker's messages go to another within seconds) while a task
may run as long as it needs. The sweep that hands out expired messages takes one only once it
found it expired, with the same score, on two sweeps a renewal apart: after a Redis outage
longer than the timeout every score is old, and the live holders renew theirs within a
renewal of Redis coming back, before the second sweep.

The changes apply to kombu's Sentinel transport too (`SentinelTransport`, for sentinel:// URLs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger("relay.broker")

UNACKED = kombu_redis.Channel.unacked_key
"""The hash of messages workers hold unacknowledged."""


def queue_lists(queue: str) -> list[str]:
    """The Redis lists kombu's transport keeps `queue` in: one per priority level, named queue
    + sep + level (level 0 is the queue's own name)."""
    channel = kombu_redis.Channel
    return [queue + (f"{channel.sep}{step}" if step else "") for step in channel.priority_steps]


# Seconds a received message waits for Redis to record it as unacked before it is given up.
APPEND_PATIENCE = 30.0
RENEWALS = 5  # renewals of the unacked messages a worker holds per visibility timeout


class QoS(kombu_redis.QoS):
    """Redis QoS whose restore-on-close gives way to the visibility sweep when Redis is gone,
    whose record of a received message outlasts a short Redis outage, and whose messages stay
    unacked for as long as the worker lives (renewed), while a dead worker's are taken up
    within 1.5 visibility timeouts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._renewer: threading.Thread | None = None
        self._suspects: dict[Any, tuple[float, float]] = {}

    def append(self, message: Any, delivery_tag: Any) -> None:
        self._append(message, delivery_tag)
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew, name="relay-unacked", daemon=True)
            self._renewer.start()

    def _append(self, message: Any, delivery_tag: Any) -> None:
        # kombu takes a message off the queue (BRPOP) and only then records it in the unacked
        # hash: if Redis goes away in between (a restart, a Sentinel failover), the message
        # lived only in this process and was dropped with the broken connection. Try again
        # until Redis answers (the pool reconnects, through the sentinels to the new master).
        deadline = time.monotonic() + APPEND_PATIENCE
        pause = 0.1
        while True:
            try:
                super().append(message, delivery_tag)  # type: ignore[no-untyped-call]
                return
            except Exception as exc:
                if time.monotonic() + pause > deadline:
                    raise
                log.warning(
                    "could not record received message %s as unacked (%s: %s); trying again",
                    delivery_tag,
                    type(exc).__name__,
                    exc,
                )
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _renew(self) -> None:
        """Keep this channel's unacked messages fresh until the channel closes."""
        every = float(self.visibility_timeout) / RENEWALS
        while not self.channel.closed:
            time.sleep(every)
            try:
                self.renew()
            except Exception as exc:  # Redis away: the next turn tries again
                log.warning("could not renew unacked messages (%s: %s)", type(exc).__name__, exc)

    def renew(self) -> int:
        """Move the index score of every message this worker holds to now; how many."""
        held: list[Any] = []
        for _ in range(10):  # the consumer thread may change it while it is copied
            try:
                held = list(self._delivered)
                break
            except RuntimeError:
                continue
        if held:
            with self.channel.conn_or_acquire() as client:
                client.zadd(self.unacked_index_key, dict.fromkeys(held, time.time()), xx=True)
        return len(held)

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        """kombu's sweep, but a message goes back to the queue only once two sweeps a renewal
        apart found it expired with the same score (see the module's docstring)."""
        self._vrestore_count += 1
        if (self._vrestore_count - 1) % (interval or 1):
            return
        with self.channel.conn_or_acquire() as client:
            ceil = time.time() - self.visibility_timeout
            try:
                with kombu_redis.Mutex(client, self.unacked_mutex_key, self.unacked_mutex_expire):
                    visible = client.zrange(
                        self.unacked_index_key,
                        ceil,
                        0,
                        desc=True,
                        byscore=True,
                        offset=num and start,
                        num=num,
                        withscores=True,
                    )
                    self._restore_confirmed(client, visible or [])
            except kombu_redis.MutexHeld:
                pass

    def _restore_confirmed(self, client: Any, visible: list[tuple[Any, float]]) -> None:
        now, confirm = time.monotonic(), float(self.visibility_timeout) / RENEWALS
        seen, self._suspects = self._suspects, {}
        for tag, score in visible:
            first = seen.get(tag)
            if first is None or first[0] != score:
                self._suspects[tag] = (score, now)
            elif now - first[1] >= confirm:
                self.restore_by_tag(tag, client)  # type: ignore[no-untyped-call]
            else:
                self._suspects[tag] = first

    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)  # type: ignore[no-untyped-call]
        except Exception as exc:  # the sweep will do it; crashing would not
            log.warning(
                "could not requeue %d unacked message(s) on disconnect (%s: %s); "
                "they return after the visibility timeout",
                len(self._delivered),
                type(exc).__name__,
                exc,
            )
            self._delivered.clear()

    def ack(self, delivery_tag: Any) -> None:
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except Exception as exc:  # the connection went away under a finishing task
            self._leave_to_sweep("ack", delivery_tag, exc)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue)  # type: ignore[no-untyped-call]
        except Exception as exc:  # the connection went away under a finishing task
            self._leave_to_sweep("reject", delivery_tag, exc)

    def _leave_to_sweep(self, what: str, delivery_tag: Any, exc: Exception) -> None:
        """Forget the message locally; it stays in Redis's unacked index, so the sweep hands it
        out again and the event_id claim keeps a delivered event from being posted twice."""
        log.warning(
            "could not %s message %s (%s: %s); it returns after the visibility timeout",
            what,
            delivery_tag,
            type(exc).__name__,
            exc,
        )
        virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    QoS = QoS
    _reused: tuple[Any, Any] | None = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool  # replaced by kombu after a reconnect: then a new client goes with it
        if self._reused is None or self._reused[0] is not pool:
            self._reused = (pool, self._create_client())  # type: ignore[no-untyped-call]
        yield self._reused[1]


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The same changes over kombu's Sentinel channel (sentinel:// URLs): the pool comes from the
    sentinels' current master, the rest is the channel above."""


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel
