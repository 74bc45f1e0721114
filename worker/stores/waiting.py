"""The waiting room's pump: a thread in every worker that looks again at receipts waiting for
their correlation record, releases those whose record came (a registration that raced the
receipt, or a release the full inbox held back), and makes those past their
`correlation_wait` `uncorrelated` dead letters of their source's own."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from tasks.upstream.events import event_id
from tasks.upstream.receipts import Receipt
from worker.sources import DEFAULT_MAX_DEAD_LETTERS
from worker.stores.connection import get_redis, key, text_of
from worker.stores.correlations import RECHECK, Correlations, count, release_args, waiting_key
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.pump import CLAIM_LIMIT, PumpThread
from worker.stores.retries import CLAIM_DUE

log = logging.getLogger("relay.correlation")
LEASE = 60.0  # seconds a claimed item stays hidden from other workers' pumps


class WaitingPump(PumpThread):
    """Re-checks due waiting receipts every `interval` seconds."""

    name, what = "relay-waiting-pump", "waiting room pump"

    def __init__(self, client: redis.Redis | None = None, interval: float = 1.0) -> None:
        self.redis = client or get_redis()
        self.interval = interval
        self.correlations = Correlations(self.redis)
        self.dead = DeadLetterStore(self.redis)
        self._claim = self.redis.register_script(CLAIM_DUE)
        super().__init__()

    def pump_once(self, now: float | None = None) -> int:
        """Look at every due waiting receipt once; return how many were looked at."""
        now = time.time() if now is None else now
        ids = [
            text_of(i)
            for i in self._claim(keys=[key("waiting")], args=[now, CLAIM_LIMIT, now + LEASE])
        ]
        if not ids:
            return 0
        found = self.correlations.with_records(ids)
        gone = set(ids) - {item["id"] for item, _ in found}
        if gone:  # released meanwhile by a registration
            self.redis.zrem(key("waiting"), *gone)
        release: list[str] = []
        later: dict[str, float] = {}
        for item, record in found:
            if record:  # if the inbox is full it stays, and is looked at again (zadd xx)
                release += release_args(item, record)
                later[item["id"]] = now + RECHECK
            elif now >= float(item["deadline"]):
                self.expire(item)
            else:
                later[item["id"]] = min(now + RECHECK, float(item["deadline"]))
        self.correlations.release(release)
        if later:
            self.redis.zadd(key("waiting"), later, xx=True)
        return len(ids)

    def expire(self, item: dict[str, Any]) -> None:
        """Make a receipt whose record never came an `uncorrelated` dead letter in its source's
        own store (bounded by the source's max_dead_letters, which the item carries): stored
        first, then taken from the waiting room (a crash in between keeps it twice, never
        loses it); if a registration released it meanwhile, the dead letter goes again."""
        receipt = Receipt.from_dict(item["receipt"])
        letter = DeadLetter(
            reason="uncorrelated",
            error=(
                f"no correlation record for {item['source']} message "
                f"{receipt.provider_message_id!r} within the source's correlation_wait; "
                "register one (relay correlate) and replay this dead letter"
            ),
            event=item,
            event_id=event_id(item["source"], receipt),
        )
        source = item["source"]
        self.dead.add_all([letter], source, int(item.get("keep", DEFAULT_MAX_DEAD_LETTERS)))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(key("waiting", "items"), item["id"])
        pipe.zrem(key("waiting"), item["id"])
        pipe.zrem(waiting_key(source), item["id"])
        if not pipe.execute()[0]:
            self.dead.remove([letter.id])
            return
        count(self.redis, source, "uncorrelated")
        log.warning(
            "correlation: %s receipt %s (%s) had no record in time: dead letter %s",
            source,
            receipt.provider_message_id,
            receipt.provider_status,
            letter.id,
        )
