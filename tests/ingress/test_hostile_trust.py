"""Who may write what, tried as an attacker holding one source's token would (real ingress,
worker, Redis and sandbox): a reference to another target, a reference beside a record, unsigned
and forged references under a reference_key, too many receipts or ids, a time in 2199."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from tests.ingress.conftest import Stack, mid
from tests.ingress.trust_stack import REF_KEY, infobip, send, trust
from tests.support.harness import event, wait_for
from tests.support.ingress import md_reference, sf_reference
from worker.dev.callbacks import Message
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore

__all__ = ["trust"]  # the module's relay (a fixture)
pytestmark = pytest.mark.timeout(120)
Y2199 = 7_226_582_400  # 2199-01-01T00:00:00Z, epoch seconds


def letters_about(provider_id: str, reason: str) -> list[DeadLetter]:
    return [
        d
        for d in DeadLetterStore().iter(reason=reason)
        if isinstance(d.event, dict)
        and d.event.get("receipt", {}).get("provider_message_id") == provider_id
    ]


def nothing_posted(trust: Stack, *mids: str) -> bool:
    time.sleep(1.5)  # the worker had time to post, had anything gone to the inbox
    return not trust.accepted(*mids)


def test_a_reference_to_another_target_is_a_forbidden_dead_letter_and_posts_nothing(
    trust: Stack,
) -> None:
    # given a source whose records go to Medallia, echoing a reference that names Salesforce
    victim1, victim2, pmid = mid("victim"), mid("victim"), "M" + mid()
    forged = Message(
        pmid, "REJECTED_NETWORK", error_code="9", reference=sf_reference(victim1, victim2)
    )
    # when it calls
    status, _, body = send(infobip(trust.ingress, "ib", forged))
    # then the receipt is a forbidden dead letter of the source's own, and nothing is posted
    assert (status, body) == (200, {"accepted": 0, "waiting": 0, "ignored": 0, "forbidden": 1})
    (letter,) = letters_about(pmid, "forbidden")
    assert "names target 'sf', not one of the source's own (md)" in letter.error
    assert DeadLetterStore().counts()["ib"] >= 1  # its own store, not the shared one
    assert nothing_posted(trust, victim1, victim2)
    listed = trust.relay.cli("dlq", "list", "--reason", "forbidden").stdout
    assert letter.id in listed
    metrics = trust.ingress.get("/metrics")[1].decode()
    assert 'relay_ingress_receipts_total{outcome="forbidden",source="ib"}' in metrics
    # and when the message turns out to be the source's, its record and a replay deliver it
    own = mid("own")
    assert (
        trust.ingress.correlate({"source": "ib", "provider_message_id": pmid, **md_reference(own)})[
            0
        ]
        == 200
    )
    replayed = trust.relay.cli("dlq", "replay", letter.id)
    assert replayed.returncode == 0, replayed.stderr
    trust.wait_posted(own)
    assert nothing_posted(trust, victim1, victim2) and not letters_about(pmid, "forbidden")


def test_a_registered_record_wins_over_an_echoed_reference(trust: Stack) -> None:
    # given a record for a provider message, and callbacks whose references say otherwise
    genuine, decoy, foreign, pmid = mid("rec"), mid("ref"), mid("sf"), "M" + mid()
    record = {"source": "ib", "provider_message_id": pmid, **md_reference(genuine)}
    assert trust.ingress.correlate(record)[0] == 200
    # when the provider's receipts echo a reference to other messages, and to another target
    now = int(time.time())
    first = Message(pmid, "DELIVERED_TO_OPERATOR", reference=md_reference(decoy), timestamp=now - 5)
    second = Message(pmid, "DELIVERED_TO_HANDSET", reference=sf_reference(foreign), timestamp=now)
    assert send(infobip(trust.ingress, "ib", first))[2]["accepted"] == 1
    trust.wait_posted(genuine)  # in order: an older status after a newer one is stale
    assert send(infobip(trust.ingress, "ib", second))[2]["accepted"] == 1
    # then both go where the record says, and nowhere else
    wait_for(lambda: len(trust.accepted(genuine)) >= 2, 30, "both statuses posted")
    statuses = {
        x["delivery"]["status"]
        for r in trust.accepted(genuine)
        for e in r["json"]["entry"]
        for x in e["messaging"]
    }
    assert statuses == {"sent", "delivered"}
    assert nothing_posted(trust, decoy, foreign) and not letters_about(pmid, "forbidden")


def test_under_a_reference_key_only_a_validly_signed_reference_counts(trust: Stack) -> None:
    from tasks.upstream.references import sign_reference
    from worker.config import load_config
    from worker.intake.correlate import signed_reference

    config = load_config(trust.relay.env["RELAY_CONFIG"], trust.relay.env)

    unsigned, forged, by_cli, by_api = (mid(label) for label in ("uns", "forg", "cli", "api"))
    made = trust.relay.cli("reference", "--source", "signed", json.dumps(md_reference(by_cli)))
    assert made.returncode == 0, made.stderr
    assert REF_KEY not in made.stdout + made.stderr
    references = {
        unsigned: json.dumps(md_reference(unsigned)),
        forged: sign_reference(md_reference(forged), "a guessed key"),
        by_cli: made.stdout.strip(),
        by_api: signed_reference(md_reference(by_api), "signed", config),
    }
    for m, text in references.items():
        callback = infobip(trust.ingress, "signed", Message("M" + m, "DELIVERED_TO_HANDSET"))
        body = json.loads(callback.body)
        body["results"][0]["callbackData"] = text  # echoed as the sender set it
        assert send(replace(callback, body=json.dumps(body).encode()))[0] == 200
    trust.wait_posted(by_cli, by_api)
    assert nothing_posted(trust, unsigned, forged)
    assert "not signed" in letters_about("M" + unsigned, "forbidden")[0].error
    assert "invalid signature" in letters_about("M" + forged, "forbidden")[0].error


def test_more_receipts_than_max_receipts_are_413_and_nothing_is_stored(trust: Stack) -> None:
    mids = [mid("many") for _ in range(1001)]
    before = Counters(family="receipts").snapshot().get("ib", {})
    messages = [Message("M" + m, "DELIVERED_TO_HANDSET", reference=md_reference(m)) for m in mids]
    status, _, body = send(infobip(trust.ingress, "ib", *messages))
    assert status == 413 and b"more than 1000 receipts" in body
    assert Counters(family="receipts").snapshot().get("ib", {}) == before
    assert nothing_posted(trust, *mids[:50])


def test_a_reference_naming_more_than_100_message_ids_is_413_and_nothing_is_stored(
    trust: Stack,
) -> None:
    fine, fan = mid("fine"), [mid("fan") for _ in range(101)]
    messages = [
        Message("M" + fine, "DELIVERED_TO_HANDSET", reference=md_reference(fine)),
        Message("M" + fan[0], "REJECTED_NETWORK", error_code="9", reference=md_reference(*fan)),
    ]
    status, _, body = send(infobip(trust.ingress, "ib", *messages))
    assert status == 413 and b"100" in body
    assert nothing_posted(trust, fine, *fan[:10])


def test_a_status_dated_2199_is_never_posted_and_never_makes_a_later_one_stale(
    trust: Stack,
) -> None:
    m, pmid = mid("future"), "M" + mid()
    forged = Message(pmid, "DELIVERED_TO_OPERATOR", reference=md_reference(m), timestamp=Y2199)
    status, _, body = send(infobip(trust.ingress, "ib", forged))
    assert (status, body) == (200, {"accepted": 0, "waiting": 0, "ignored": 0, "invalid": 1})
    (letter,) = letters_about(pmid, "invalid")
    assert "2199-01-01T00:00:00+00:00" in letter.error and "not posted" in letter.error
    genuine = Message(pmid, "DELIVERED_TO_HANDSET", reference=md_reference(m))
    assert send(infobip(trust.ingress, "ib", genuine))[2]["accepted"] == 1
    (request,) = trust.wait_posted(m)
    (entry,) = request["json"]["entry"]
    assert [x["delivery"]["status"] for x in entry["messaging"]] == ["delivered"]


def test_a_pushed_event_dated_2199_is_invalid_and_a_later_genuine_one_is_posted(
    trust: Stack,
) -> None:
    # given a producer's event for a message, dated 2199, pushed before a genuine one
    m = mid("pushed")
    forged = event("md", "sent", m, occurred_at="2199-01-01T00:00:00Z")
    genuine = event("md", "delivered", m, occurred_at=int(time.time()))
    assert trust.relay.push(forged).returncode == 0
    wait_for(
        lambda: any(
            d.event_id == forged["event_id"] for d in DeadLetterStore().iter(reason="invalid")
        ),
        30,
        "the future-dated event's dead letter",
    )
    # when the genuine one follows, then it is posted, and the forged one never was
    assert trust.relay.push(genuine).returncode == 0
    (request,) = trust.wait_posted(m)
    (entry,) = request["json"]["entry"]
    assert [x["delivery"]["status"] for x in entry["messaging"]] == ["delivered"]
    (letter,) = [d for d in DeadLetterStore().iter() if d.event_id == forged["event_id"]]
    assert "occurred_at: Dated more than 5 minutes in the future" in letter.error
