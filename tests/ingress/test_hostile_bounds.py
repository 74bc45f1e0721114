"""Shared bounds that one source must not exhaust, tried as an attacker holding its token
would (real ingress, worker, Redis and sandbox): its rate and its waiting receipts past their
quotas are 429 with Retry-After, and its junk lands in a bounded store of its own."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.ingress.conftest import Stack, mid
from tests.ingress.trust_stack import infobip, send, smpp, trust
from tests.support.ingress import SECRETS, Ingress, md_reference
from worker.dev.callbacks import Callback, Message
from worker.stores.connection import get_redis, key
from worker.stores.correlations import Correlations
from worker.stores.deadletters import DeadLetterStore

__all__ = ["trust"]  # the module's relay (a fixture)
pytestmark = pytest.mark.timeout(120)


def test_past_its_rate_a_source_is_answered_429_with_retry_after_and_nothing_is_stored(
    trust: Stack,
) -> None:
    # given a source allowed 1 receipt a second, 10 at once (5 a callback)
    mids = [mid("rate") for _ in range(15)]
    callbacks = [
        infobip(
            trust.ingress,
            "tight",
            *[Message("M" + m, "DELIVERED_TO_HANDSET", reference=md_reference(m)) for m in chunk],
        )
        for chunk in (mids[:5], mids[5:10], mids[10:])
    ]
    # when it sends 15 at once
    answers = [send(c) for c in callbacks]
    # then the third callback is refused whole, with a time to retry, and others still pass
    assert [a[0] for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2][1]["retry-after"]) <= 6
    trust.wait_posted(*mids[:10])
    assert not trust.accepted(*mids[10:])
    other = mid("other")
    message = Message("M" + other, "DELIVERED_TO_HANDSET", reference=md_reference(other))
    assert send(infobip(trust.ingress, "ib", message))[0] == 200
    metrics = trust.ingress.get("/metrics")[1].decode()
    assert 'relay_ingress_requests_total{outcome="quota_rate",source="tight"} 1.0' in metrics


def test_the_waiting_room_is_bounded_per_source(trust: Stack) -> None:
    # given a source that may have 3 receipts waiting for their records
    pmids = [mid("wait") for _ in range(4)]
    answers = [send(smpp(trust.ingress, "few", Message(p, "DELIVRD"))) for p in pmids]
    # then the fourth is refused until the oldest wait ends, and another source still waits
    assert [a[0] for a in answers] == [200, 200, 200, 429]
    assert 100 <= int(answers[3][1]["retry-after"]) <= 121  # the source's correlation_wait
    assert Correlations().waiting_by_source(["few"]) == {"few": 3}
    status, _, body = send(smpp(trust.ingress, "smpp", Message(mid("elsewhere"), "DELIVRD")))
    assert (status, body["waiting"]) == (200, 1)
    records = [{"source": "few", "provider_message_id": p, **md_reference(p)} for p in pmids[:3]]
    assert trust.ingress.correlate(*records)[1]["released"] == 3
    assert send(smpp(trust.ingress, "few", Message(pmids[3], "DELIVRD")))[0] == 200


def junk_body(n: int) -> bytes:
    """About 1 MiB that authenticates and cannot be read: 'results' is not a list."""
    return b'{"results": "' + str(n).encode() + b"x" * (1024 * 1024 - 64) + b'"}'


def test_five_big_junk_bodies_do_not_evict_a_genuine_dead_letter(trust: Stack) -> None:
    # given an operator's genuine dead letter, and an ingress whose shared store holds only 5
    assert trust.relay.push("this line is not JSON").returncode == 1
    (genuine,) = [d for d in DeadLetterStore().iter() if d.event == "this line is not JSON"]
    ingress = Ingress(trust.relay, RELAY_DLQ_MAX_SIZE="5")
    url = f"{ingress.url}/v1/receipts/junk?token={SECRETS['IB_TOKEN']}"
    before = get_redis().info("memory")["used_memory"]
    # when a source sends five 1 MiB bodies that cannot be read
    for n in range(5):
        body = junk_body(n)
        status, _, answer = send(Callback("POST", url, {"Content-Type": "application/json"}, body))
        assert status == 200 and "invalid" in answer
    # then they are kept in the source's own store, a prefix and a hash each, and the genuine
    # dead letter is still there
    assert DeadLetterStore().get(genuine.id) == genuine
    kept = [
        d
        for d in DeadLetterStore().iter()
        if isinstance(d.event, dict) and d.event.get("source") == "junk"
    ]
    assert len(kept) == 3  # the source's max_dead_letters
    assert all(len(d.event["body"]) == 4096 for d in kept)
    assert kept[-1].event["body_sha256"] == hashlib.sha256(junk_body(4)).hexdigest()
    assert len(json.dumps([d.event for d in kept])) < 20_000
    assert get_redis().info("memory")["used_memory"] - before < 2_000_000
    assert get_redis().hlen(key("dlq", "source", "junk", "items")) == 3
