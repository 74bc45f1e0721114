"""Putting envelopes on the delivery queue: Celery messages of up to RELAY_BATCH envelopes.

Tasks are referred to by their registered names (`relay.deliver`, `relay.deliver_batch`),
never imported: publishing needs the app, not the task code, so neither imports the other.
Fresh events do not travel this way (each worker's feeder delivers them in its own lanes); the
retry pump and `relay dlq replay` publish envelopes that already carry their bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from worker.observe.labels import DELIVER, DELIVER_BUNDLE, describe, describe_all

__all__ = ["DELIVER", "DELIVER_BUNDLE", "Publisher"]


class Publisher:
    """Publishes envelopes on the app's delivery queue, `bundle_size` to a message."""

    def __init__(self, app: Any, bundle_size: int) -> None:
        self.app = app
        self.bundle_size = max(1, bundle_size)

    def publish(self, envelopes: Iterable[dict[str, Any]]) -> int:
        """Queue envelopes (their dict form) for delivery; return how many."""
        count = 0
        items = iter(envelopes)
        with self.app.producer_or_acquire() as producer:
            while bundle := list(islice(items, self.bundle_size)):
                args: list[Any]
                if len(bundle) == 1:
                    name, args, label = DELIVER, [bundle[0]], describe(bundle[0])
                else:
                    name, args, label = DELIVER_BUNDLE, [bundle], describe_all(bundle)
                self.app.send_task(
                    name, args=args, producer=producer, argsrepr=label, kwargsrepr="{}"
                )
                count += len(bundle)
        return count
