"""kombu's Redis transport with two changes: losing Redis must not crash the worker, and a
publish must not build a Redis client.

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

Both changes apply to kombu's Sentinel transport too (`SentinelTransport`, for sentinel:// URLs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger("relay.broker")


class QoS(kombu_redis.QoS):
    """Redis QoS whose restore-on-close gives way to the visibility sweep when Redis is gone."""

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
