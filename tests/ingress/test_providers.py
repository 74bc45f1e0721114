"""Each provider's correctly signed callback reaches the look-alike APIs as the right request;
wrongly signed ones are refused and post nothing (real ingress, worker, Redis and sandbox)."""

from __future__ import annotations

import json
import time

from tests.ingress.conftest import Stack, mid
from tests.support.ingress import SECRETS, SF_CHANNEL, SF_CONVERSATION, md_reference, sf_reference
from worker.dev.callbacks import Message
from worker.stores.counters import Counters


def test_a_twilio_failure_reaches_salesforce_as_a_delivery_failed_interaction(stack: Stack) -> None:
    m = mid("sf")
    status, body = stack.ingress.post(
        "tw", Message("SM" + m, "undelivered", error_code="30003", reference=sf_reference(m))
    )
    assert (status, body) == (200, {"accepted": 1, "waiting": 0, "ignored": 0})
    (request,) = stack.wait_posted(m)
    assert request["endpoint"] == "interactions"
    (interaction,) = request["json"]["interactions"]
    assert interaction["payload"]["errorCode"] == "30003"
    assert interaction["payload"]["errorMessage"] == "Unreachable destination handset"
    assert request["json"]["from"] == "+15551234567" and request["json"]["to"] == SF_CHANNEL


def test_a_whatsapp_batch_reaches_medallia_and_its_read_is_skipped_as_the_contract_says(
    stack: Stack,
) -> None:
    delivered, failed, read = mid("wa"), mid("wa"), mid("wa")
    status, body = stack.ingress.post(
        "wa",
        Message("wamid." + delivered, "delivered", reference=md_reference(delivered)),
        Message("wamid." + failed, "failed", error_code="131026", reference=md_reference(failed)),
        Message("wamid." + read, "read", reference=md_reference(read)),
    )
    assert (status, body["accepted"]) == (200, 3)
    requests = stack.wait_posted(delivered, failed)
    statuses = {
        x["delivery"]["mids"][0]: x["delivery"]["status"]
        for r in requests
        for e in r["json"]["entry"]
        for x in e["messaging"]
    }
    assert statuses == {delivered: "delivered", failed: "failed"}
    time.sleep(0.5)
    assert not stack.accepted(read)


def test_a_vonage_status_reaches_salesforce_through_a_record_posted_to_the_ingress(
    stack: Stack,
) -> None:
    m = mid("vg")
    record = {
        "source": "vg",
        "provider_message_id": "uuid-" + m,
        **sf_reference(m, conversation=True),
    }
    assert stack.ingress.correlate(record) == (200, {"stored": 1, "released": 0})
    status, body = stack.ingress.post("vg", Message("uuid-" + m, "read"))
    assert (status, body["accepted"]) == (200, 1)
    (request,) = stack.wait_posted(m)
    assert request["endpoint"] == "acknowledgement"
    assert request["json"]["conversationIdentifier"] == SF_CONVERSATION
    assert request["json"]["acknowledgements"][0]["acknowledgementType"] == "Read"


def test_an_infobip_batch_reaches_medallia(stack: Stack) -> None:
    first, second = mid("ib"), mid("ib")
    status, body = stack.ingress.post(
        "ib",
        Message("M" + first, "DELIVERED_TO_HANDSET", reference=md_reference(first)),
        Message(
            "M" + second,
            "UNDELIVERABLE_NOT_DELIVERED",
            error_code="27",
            reference=md_reference(second),
        ),
    )
    assert (status, body["accepted"]) == (200, 2)
    requests = stack.wait_posted(first, second)
    errors = [x.get("error") for r in requests for e in r["json"]["entry"] for x in e["messaging"]]
    assert {"code": 27, "name": "EC_ABSENT_SUBSCRIBER"} in errors


def test_an_smpp_receipt_reaches_salesforce_through_a_record_from_relay_correlate(
    stack: Stack,
) -> None:
    m = mid("smpp")
    record = {"source": "smpp", "provider_message_id": m, "message_ids": [m], "channel": SF_CHANNEL}
    line = json.dumps(record)
    result = stack.relay.cli("correlate", "-", stdin=line + "\n")
    assert result.returncode == 0, result.stderr
    status, _ = stack.ingress.post("smpp", Message(m, "UNDELIV", error_code="011"))
    assert status == 200
    (request,) = stack.wait_posted(m)
    assert request["json"]["interactions"][0]["payload"]["errorCode"] == "11"


def test_wrongly_signed_callbacks_are_refused_counted_and_post_nothing(stack: Stack) -> None:
    m = mid("bad")
    before = Counters(family="receipts").snapshot()
    for source in ("tw", "wa", "vg", "ib", "smpp"):
        callback = stack.ingress.callback(
            source, Message("X" + m, "delivered", reference=sf_reference(m))
        )
        headers = {
            k: v
            for k, v in callback.headers.items()
            if k.lower() not in ("authorization", "x-twilio-signature", "x-hub-signature-256")
        }
        forged = {
            "X-Twilio-Signature": "AAAA",
            "X-Hub-Signature-256": "sha256=00",
            "Authorization": "Basic cmVsYXk6bm8=",
        }
        url = callback.url.replace("token=", "token=wrong")
        assert (
            stack.ingress.request(callback.method, url, {**headers, **forged}, callback.body)[0]
            == 401
        )
    after = Counters(family="receipts").snapshot()
    assert all(
        after[s].get("refused", 0) == before.get(s, {}).get("refused", 0) + 1
        for s in ("tw", "wa", "vg", "ib", "smpp")
    )
    time.sleep(1)
    assert not stack.accepted(m)
    assert "X" + m not in stack.ingress.log.read_text()


def test_relay_sandbox_can_play_a_provider_against_the_ingress(stack: Stack) -> None:
    m = mid("play")
    result = stack.relay.cli(
        "sandbox",
        "--play",
        "twilio",
        "--to",
        f"{stack.ingress.url}/v1/receipts/tw",
        "--secret",
        SECRETS["TW_TOKEN"],
        "--message-id",
        "SM" + m,
        "--status",
        "failed",
        "--error-code",
        "30007",
        "--ref",
        json.dumps(sf_reference(m)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": 200 " in result.stdout
    (request,) = stack.wait_posted(m)
    assert request["json"]["interactions"][0]["payload"]["errorMessage"] == "Carrier violation"
