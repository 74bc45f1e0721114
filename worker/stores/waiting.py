"""The waiting room's pump: a thread in every worker that looks again at receipts waiting for
their correlation record, releases those whose record came (a registration that raced the
receipt), and makes those past their `correlation_wait` `uncorrelated` dead letters."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis

from tasks.upstream.events import event_id
from tasks.upstream.receipts import Receipt
from worker.stores.connection import get_redis, key, text_of
from worker.stores.correlations import RECHECK, Correlations, count, event_of, record_key
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.retries import CLAIM_DUE

log = logging.getLogger("relay.correlation")
CLAIM_LIMIT = 500
LEASE = 60.0  # seconds a claimed item stays hidden from other workers' pumps


class WaitingPump:
    """Re-checks due waiting receipts every `interval` seconds."""

    def __init__(self, client: redis.Redis | None = None, interval: float = 1.0) -> None:
        self.redis = client or get_redis()
        self.interval = interval
        self.correlations = Correlations(self.redis)
        self.dead = DeadLetterStore(self.redis)
        self._claim = self.redis.register_script(CLAIM_DUE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-waiting-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def pump_once(self, now: float | None = None) -> int:
        """Look at every due waiting receipt once; return how many were looked at."""
        now = time.time() if now is None else now
        ids = [
            text_of(i)
            for i in self._claim(keys=[key("waiting")], args=[now, CLAIM_LIMIT, now + LEASE])
        ]
        if not ids:
            return 0
        texts = self.redis.hmget(key("waiting", "items"), ids)
        gone = [i for i, t in zip(ids, texts, strict=True) if not t]
        if gone:  # released meanwhile by a registration
            self.redis.zrem(key("waiting"), *gone)
        items = [json.loads(text_of(t)) for t in texts if t]
        records = (
            self.redis.mget(
                [record_key(i["source"], i["receipt"]["provider_message_id"]) for i in items]
            )
            if items
            else []
        )
        release: list[str] = []
        later: dict[str, float] = {}
        for item, record in zip(items, records, strict=True):
            if record:
                release += [item["id"], event_of(item, record), key("receipts", item["source"])]
            elif now >= float(item["deadline"]):
                self.expire(item)
            else:
                later[item["id"]] = min(now + RECHECK, float(item["deadline"]))
        self.correlations.release(release)
        if later:
            self.redis.zadd(key("waiting"), later, xx=True)
        return len(ids)

    def expire(self, item: dict[str, Any]) -> None:
        """Make a receipt whose record never came an `uncorrelated` dead letter: stored first,
        then taken from the waiting room (a crash in between keeps it twice, never loses it);
        if a registration released it meanwhile, the dead letter goes again."""
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
        self.dead.add(letter)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(key("waiting", "items"), item["id"])
        pipe.zrem(key("waiting"), item["id"])
        if not pipe.execute()[0]:
            self.dead.remove([letter.id])
            return
        count(self.redis, item["source"], "uncorrelated")
        log.warning(
            "correlation: %s receipt %s (%s) had no record in time: dead letter %s",
            item["source"],
            receipt.provider_message_id,
            receipt.provider_status,
            letter.id,
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                looked = self.pump_once()
            except redis.RedisError as exc:
                log.warning("waiting room: Redis unavailable (%s); trying again", exc)
                looked = 0
            except Exception:  # keep going: a stopped pump strands every waiting receipt
                log.exception("waiting room pump failed; trying again")
                looked = 0
            if looked < CLAIM_LIMIT:
                self._stop.wait(self.interval)
