"""The ingress's one write per group commit (TAKE) on a real Redis: each request's plan is
written whole or not at all; records win over references; a source's quotas (receipts a
second, receipts waiting) and the inbox's bound refuse it with a time to retry."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest
import redis

from tasks.upstream.correlation import Correlation
from tasks.upstream.receipts import Receipt
from worker.sources import Source
from worker.stores.connection import key
from worker.stores.correlations import compact, record_key, waiting_item
from worker.stores.counters import Counters
from worker.stores.planning import plan
from worker.stores.take import TAKE, Plan, outcomes, take_args

pytestmark = pytest.mark.timeout(30)
SOURCE = Source("ib", "infobip", {"token": "t"}, "md", receipts_per_second=10, max_receipts=10)
NOW = time.time()
MD = {"target": "md", "channel": "page-1"}


def receipt(
    pmid: str, reference: dict[str, Any] | None = None, status: Any = "delivered"
) -> Receipt:
    text = json.dumps(reference) if reference else None
    return Receipt("infobip", pmid, status, "DELIVERED_TO_HANDSET", None, "+4900", None, text)


def take(
    client: redis.Redis, *plans: tuple[Source, Plan], bound: int = 1000, now: float = NOW
) -> list[tuple[str, int]]:
    script = client.register_script(TAKE)
    keys = [key("inbox"), key("waiting", "items"), key("waiting")]
    return outcomes(script(keys=keys, args=take_args(list(plans), bound, now)))


def planned(source: Source, *receipts: Receipt, records: dict[str, Any] | None = None) -> Plan:
    """The plan the ingress makes: without records first, then with those it must read."""
    received = int(NOW * 1000)
    first = plan(source, list(receipts), records, received)
    if not first.lookups:
        return first
    looked_up = {p: None for p in first.lookups}
    return plan(source, list(receipts), {**looked_up, **(records or {})}, received)


def inbox(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(t) for t in client.lrange(key("inbox"), 0, -1)]


def test_a_plan_is_written_whole_with_its_counts(prefix: str, redis_client: redis.Redis) -> None:
    refs = planned(SOURCE, receipt("a", {**MD, "message_ids": ["m-a"]}), receipt("b"))
    ignored = planned(SOURCE, receipt("c", status=None))
    assert take(redis_client, (SOURCE, refs), (SOURCE, ignored)) == [("ok", 1), ("ok", 1)]
    assert [e["message_ids"] for e in inbox(redis_client)] == [["m-a"]]
    assert redis_client.zcard(key("waiting", "of", "ib")) == 1
    counts = Counters(redis_client, "receipts").snapshot()["ib"]
    assert counts == {"accepted": 1, "waiting": 1, "ignored": 1}


def test_a_record_registered_for_a_receipt_routed_by_reference_makes_the_request_replan(
    prefix: str, redis_client: redis.Redis
) -> None:
    forged = planned(SOURCE, receipt("p", {**MD, "message_ids": ["victim"]}))
    assert forged.unchecked == [record_key("ib", "p")]
    redis_client.set(record_key("ib", "p"), compact(Correlation(("m-p",), "c", "md").to_dict()))
    assert take(redis_client, (SOURCE, forged)) == [("replan", 1)]
    assert not inbox(redis_client)  # nothing of it written
    record = redis_client.get(record_key("ib", "p"))
    again = planned(SOURCE, receipt("p", {**MD, "message_ids": ["victim"]}), records={"p": record})
    assert take(redis_client, (SOURCE, again)) == [("ok", 1)]
    assert [e["message_ids"] for e in inbox(redis_client)] == [["m-p"]]  # the record's ids


def test_past_its_rate_a_source_is_refused_until_its_bucket_refills(
    prefix: str, redis_client: redis.Redis
) -> None:
    many = planned(SOURCE, *[receipt(f"r{n}", {**MD, "message_ids": [f"m{n}"]}) for n in range(10)])
    other = replace(SOURCE, name="tw")
    assert SOURCE.burst == 100  # 10 s of 10 a second
    results = [take(redis_client, (SOURCE, many))[0] for _ in range(11)]
    assert results[:10] == [("ok", 1)] * 10 and results[10] == ("rate", 1)
    assert take(redis_client, (other, many)) == [("ok", 1)]  # another source's bucket
    assert take(redis_client, (SOURCE, many), now=NOW + 0.5) == [("rate", 1)]
    assert take(redis_client, (SOURCE, many), now=NOW + 1.1) == [("ok", 1)]
    assert len(inbox(redis_client)) == 120


def test_a_big_deficit_says_how_long_to_wait(prefix: str, redis_client: redis.Redis) -> None:
    slow = replace(SOURCE, receipts_per_second=0.5, max_receipts=10)  # burst 10
    ten = planned(slow, *[receipt(f"s{n}") for n in range(10)])
    assert take(redis_client, (slow, ten)) == [("ok", 1)]
    assert take(redis_client, (slow, ten)) == [("rate", 20)]  # 10 receipts at 0.5 a second


def test_past_max_waiting_a_source_is_refused_until_its_oldest_deadline(
    prefix: str, redis_client: redis.Redis
) -> None:
    small = replace(SOURCE, max_waiting=3, correlation_wait=60)
    assert take(redis_client, (small, planned(small, receipt("w1"), receipt("w2")))) == [("ok", 1)]
    (outcome,) = take(redis_client, (small, planned(small, receipt("w3"), receipt("w4"))))
    assert outcome[0] == "waiting" and 58 <= outcome[1] <= 61
    other = replace(small, name="tw")
    assert take(redis_client, (other, planned(other, receipt("w5"), receipt("w6")))) == [("ok", 1)]
    assert redis_client.hlen(key("waiting", "items")) == 4


def test_past_the_inbox_bound_a_plan_with_events_is_refused_and_the_rest_of_the_batch_goes(
    prefix: str, redis_client: redis.Redis
) -> None:
    two = planned(SOURCE, *[receipt(f"i{n}", {**MD, "message_ids": [f"m{n}"]}) for n in range(2)])
    waits = planned(SOURCE, receipt("x"))
    one = planned(SOURCE, receipt("i9", {**MD, "message_ids": ["m9"]}))
    batch = [(SOURCE, two), (SOURCE, two), (SOURCE, waits), (SOURCE, one)]
    results = take(redis_client, *batch, bound=3)
    assert [r[0] for r in results] == ["ok", "full", "ok", "ok"]
    assert len(inbox(redis_client)) == 3


def test_waiting_items_long_past_their_deadline_no_longer_count(
    prefix: str, redis_client: redis.Redis
) -> None:
    small = replace(SOURCE, max_waiting=1)
    old = waiting_item(small, receipt("o"), int((NOW - 7200) * 1000))
    redis_client.zadd(key("waiting", "of", "ib"), {old["id"]: old["deadline"]})
    assert take(redis_client, (small, planned(small, receipt("n")))) == [("ok", 1)]
