"""kombu's Redis transport with one fix: losing Redis must not crash the worker.

When the broker connection drops, kombu closes the channel and tries to push the worker's
unacknowledged messages back at once. With Redis gone (or the connection already torn down,
kombu 5.7 raises AttributeError on `conninfo.hostname`), that attempt raised out of the
consumer and Celery stopped the worker as an "unrecoverable error". Those messages are safe in
Redis's unacked index anyway: the visibility sweep returns them. So a failed attempt is logged
and left to the sweep.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

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


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
