"""Receipts that arrive before their record wait, are released when it comes, and become
`uncorrelated` dead letters when it never does; a replay after the record exists delivers."""

from __future__ import annotations

import json

import pytest

from tests.ingress.conftest import Stack, mid
from tests.support.harness import wait_for
from tests.support.ingress import SF_CHANNEL, sf_reference
from worker.dev.callbacks import Message
from worker.stores.connection import key
from worker.stores.correlations import Correlations
from worker.stores.deadletters import DeadLetter, DeadLetterStore


def uncorrelated(provider_id: str) -> list[DeadLetter]:
    return [
        d
        for d in DeadLetterStore().iter(reason="uncorrelated")
        if d.event["receipt"]["provider_message_id"] == provider_id
    ]


def test_a_receipt_before_its_record_waits_and_goes_out_when_the_record_is_posted(
    stack: Stack,
) -> None:
    m = mid("early")
    assert stack.ingress.post("smpp", Message(m, "DELIVRD")) == (
        200,
        {"accepted": 0, "waiting": 1, "ignored": 0},
    )
    record = {"source": "smpp", "provider_message_id": m, **sf_reference(m, conversation=True)}
    assert stack.ingress.correlate(record) == (200, {"stored": 1, "released": 1})
    (request,) = stack.wait_posted(m)
    assert request["json"]["acknowledgements"][0]["acknowledgementType"] == "Delivered"


def test_a_receipt_whose_record_never_comes_becomes_an_uncorrelated_dead_letter(
    stack: Stack,
) -> None:
    m = mid("never")
    assert stack.ingress.post("hasty", Message(m, "REJECTD", error_code="088"))[0] == 200
    wait_for(lambda: bool(uncorrelated(m)), 20, "the uncorrelated dead letter")
    (letter,) = uncorrelated(m)
    assert letter.event["receipt"]["status"] == "failed"
    assert "relay correlate" in letter.error
    shown = stack.relay.cli("dlq", "show", letter.id).stdout + stack.relay.cli("dlq", "list").stdout
    assert letter.id in shown and "+15551234567" not in shown  # the recipient is masked
    assert m not in json.dumps(Correlations().redis.hvals(key("waiting", "items")))


def test_an_uncorrelated_dead_letter_replayed_after_its_record_exists_is_delivered(
    stack: Stack,
) -> None:
    m = mid("late")
    assert stack.ingress.post("hasty", Message(m, "UNDELIV", error_code="001"))[0] == 200
    wait_for(lambda: bool(uncorrelated(m)), 20, "the uncorrelated dead letter")
    line = json.dumps(
        {"source": "hasty", "provider_message_id": m, "message_ids": [m], "channel": SF_CHANNEL}
    )
    assert stack.relay.cli("correlate", "-", stdin=line).returncode == 0
    (letter,) = uncorrelated(m)
    result = stack.relay.cli("dlq", "replay", letter.id)
    assert result.returncode == 0, result.stderr
    (request,) = stack.wait_posted(m)
    assert request["json"]["interactions"][0]["payload"]["errorCode"] == "1"
    assert not uncorrelated(m)


def test_correlations_need_the_ingress_token_and_valid_records(stack: Stack) -> None:
    record = {"source": "smpp", "provider_message_id": "p", "message_ids": ["m"], "channel": "c"}
    assert stack.ingress.correlate(record, token="wrong")[0] == 401
    status, body = stack.ingress.correlate(
        record,
        {"source": "nobody", "provider_message_id": "p", "message_ids": ["m"], "channel": "c"},
    )
    assert status == 400 and "unknown source 'nobody'" in body["problems"][0]
    assert Correlations().lookup("smpp", "p") is None


def test_the_whatsapp_handshake_echoes_the_challenge_for_the_verify_token(stack: Stack) -> None:
    path = "/v1/receipts/wa?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1158201444"
    assert stack.ingress.get(path.format("verify-me")) == (200, b"1158201444")
    assert stack.ingress.get(path.format("wrong"))[0] == 403


def test_metrics_count_requests_by_source_and_outcome(stack: Stack) -> None:
    stack.ingress.request("POST", "/v1/receipts/tw", {}, b"MessageSid=x")
    status, body = stack.ingress.get("/metrics")
    assert status == 200
    assert b'relay_ingress_requests_total{outcome="refused",source="tw"}' in body
    assert b"relay_ingress_request_duration_seconds_bucket" in body


def test_workers_metrics_count_receipts_fleet_wide_by_source_and_outcome(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.ops.gauges import StateCollector

    # as in a worker: the targets file's secrets are set, so its sources can be read
    for name in ("SF_TOKEN", "MD_TOKEN"):
        monkeypatch.setenv(name, stack.relay.env[name])
    stack.ingress.request("POST", "/v1/receipts/ib", {}, b"{}")  # refused: no token
    families = {f.name: f for f in StateCollector().collect()}
    samples = {
        (s.labels["source"], s.labels["outcome"]) for s in families["relay_receipts"].samples
    }
    assert ("ib", "refused") in samples
    assert "relay_receipts_waiting" in families
