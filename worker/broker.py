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

The changes apply to kombu's Sentinel transport too (`SentinelTransport`, for sentinel:// URLs).
"""

from __future__ import annotations

import logging
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


class QoS(kombu_redis.QoS):
    """Redis QoS whose restore-on-close gives way to the visibility sweep when Redis is gone,
    and whose record of a received message outlasts a short Redis outage."""

    def append(self, message: Any, delivery_tag: Any) -> None:
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
