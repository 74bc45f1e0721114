"""Correlation records and the waiting room on a real Redis: the fast path on registration,
the pump's re-checks (a registration that raced the receipt), expiry into dead letters."""

from __future__ import annotations

import json
import time

import redis

from tasks.upstream.correlation import Correlation
from tasks.upstream.receipts import Receipt, ReceiptError
from worker.sources import Source
from worker.stores.connection import key
from worker.stores.correlations import Correlations, compact, park, record_key
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.planning import plan
from worker.stores.waiting import WaitingPump

SOURCE = Source("smpp", "smpp_dlr", {"token": "t"}, "sf", correlation_wait=30.0)
TO_SF = Correlation(("m-1",), "chan", "sf")
RECEIPT = Receipt(
    "smpp_dlr", "p-1", "failed", "REJECTD", None, "+4900", ReceiptError(88, "Message rejected")
)


def wait_for_record(
    client: redis.Redis, receipt: Receipt = RECEIPT, now: float | None = None
) -> str:
    """Park a receipt as the ingress does; its waiting item's id."""
    now = time.time() if now is None else now
    (item,) = plan(SOURCE, [receipt], {}, int(now * 1000)).waiting
    pipe = client.pipeline()
    park(pipe, item, now)
    pipe.execute()
    return str(item["id"])


def expired(client: redis.Redis) -> DeadLetter:
    """A receipt that waited past its correlation_wait: its dead letter."""
    now = time.time()
    wait_for_record(client, now=now)
    WaitingPump(client).pump_once(now + 31)
    (letter,) = DeadLetterStore(client).iter()
    return letter


def inbox(client: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(t) for t in client.lrange(key("inbox"), 0, -1)]


def test_a_registration_releases_the_receipts_waiting_for_it_at_once(
    prefix: str, redis_client: redis.Redis
) -> None:
    wait_for_record(redis_client)
    released = Correlations(redis_client).register([("smpp", "p-1", TO_SF, 3600)])
    (event,) = inbox(redis_client)
    assert released == 1 and Correlations(redis_client).waiting() == 0
    assert (event["target"], event["message_ids"], event["status"]) == ("sf", ["m-1"], "failed")
    assert Counters(redis_client, "receipts").snapshot()["smpp"]["accepted"] == 1
    assert redis_client.ttl(record_key("smpp", "p-1")) > 3500


def test_the_pump_releases_a_receipt_whose_record_came_without_releasing_it(
    prefix: str, redis_client: redis.Redis
) -> None:
    wait_for_record(redis_client)
    redis_client.set(record_key("smpp", "p-1"), compact(TO_SF.to_dict()))  # lost the race
    assert WaitingPump(redis_client).pump_once(time.time() + 3) == 1
    assert len(inbox(redis_client)) == 1 and Correlations(redis_client).waiting() == 0


def test_the_pump_leaves_a_receipt_to_wait_and_looks_again_later(
    prefix: str, redis_client: redis.Redis
) -> None:
    now = time.time()
    item = wait_for_record(redis_client, now=now)
    WaitingPump(redis_client).pump_once(now + 3)
    assert Correlations(redis_client).waiting() == 1 and not inbox(redis_client)
    assert float(redis_client.zscore(key("waiting"), item) or 0) > now + 10


def test_a_receipt_past_its_wait_becomes_an_uncorrelated_dead_letter_holding_it(
    prefix: str, redis_client: redis.Redis
) -> None:
    letter = expired(redis_client)
    assert letter.reason == "uncorrelated" and letter.event["source"] == "smpp"
    assert Receipt.from_dict(letter.event["receipt"]) == RECEIPT
    assert Correlations(redis_client).waiting() == 0 and not inbox(redis_client)
    assert Counters(redis_client, "receipts").snapshot()["smpp"]["uncorrelated"] == 1


def test_a_resubmitted_receipt_goes_out_once_its_record_exists_else_waits_again(
    prefix: str, redis_client: redis.Redis
) -> None:
    letter = expired(redis_client)
    correlations = Correlations(redis_client)
    assert correlations.resubmit(letter.event, 30) is False and correlations.waiting() == 1
    correlations.register([("smpp", "p-1", TO_SF, 60)])
    assert correlations.resubmit(letter.event, 30) is True
    assert len(inbox(redis_client)) == 2  # the re-parked copy was released too: one event_id
    assert len({e["event_id"] for e in inbox(redis_client)}) == 1
