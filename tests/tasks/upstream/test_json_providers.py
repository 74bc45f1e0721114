"""WhatsApp and Vonage webhooks: the documented examples, statuses, errors, batches."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.upstream import vonage, whatsapp
from tasks.upstream.receipts import ReceiptError, Unreadable
from tests.tasks.upstream.builders import json_request, whatsapp_status

WA_ERROR = {
    "code": 131026,
    "title": "Message undeliverable",
    "message": "Message undeliverable",
    "error_data": {"details": "..."},
}
VONAGE_EXAMPLE: dict[str, Any] = {
    "message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "to": "447700900000",
    "from": "447700900001",
    "timestamp": "2025-05-01T14:00:00.000Z",
    "status": "rejected",
    "channel": "sms",
    "client_ref": "abc",
    "error": {
        "type": "https://developer.vonage.com/api-errors/messages#1360",
        "title": "1360",
        "detail": "TTL was activated, no delivery receipt",
    },
}


def test_the_documented_whatsapp_failure() -> None:
    document = whatsapp_status(status="failed", biz_opaque_callback_data="ref", errors=[WA_ERROR])
    (receipt,) = whatsapp.normalize(json_request(document))
    assert receipt.provider_message_id == "wamid.HBgL"
    assert receipt.status == "failed"
    assert receipt.occurred_ms == 1750857384000
    assert receipt.recipient == "+16505551234"
    assert receipt.reference == "ref"
    assert receipt.error == ReceiptError(131026, "Message undeliverable", "Message undeliverable")


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("failed", "failed"),
        ("deleted", None),
    ],
)
def test_whatsapp_statuses_map_as_the_table_says(given: str, canonical: str | None) -> None:
    (receipt,) = whatsapp.normalize(json_request(whatsapp_status(status=given)))
    assert receipt.status == canonical


def test_a_whatsapp_batch_gives_every_status_of_every_entry_and_skips_inbound_messages() -> None:
    first, second = whatsapp_status(id="wamid.1"), whatsapp_status(id="wamid.2", status="read")
    second["entry"][0]["changes"][0]["value"]["messages"] = [{"from": "1", "text": {"body": "hi"}}]
    first["entry"] += second["entry"]
    assert [r.provider_message_id for r in whatsapp.normalize(json_request(first))] == [
        "wamid.1",
        "wamid.2",
    ]


def test_a_whatsapp_webhook_with_only_inbound_messages_has_no_receipts() -> None:
    document = whatsapp_status()
    del document["entry"][0]["changes"][0]["value"]["statuses"]
    assert whatsapp.normalize(json_request(document)) == []


@pytest.mark.parametrize(
    "document",
    [[], {"entry": "x"}, {"entry": [1]}, whatsapp_status(id=None), whatsapp_status(status=[1])],
)
def test_malformed_whatsapp_webhooks_are_unreadable(document: Any) -> None:
    with pytest.raises(Unreadable):
        whatsapp.normalize(json_request(document))


def test_the_documented_vonage_rejection() -> None:
    (receipt,) = vonage.normalize(json_request(VONAGE_EXAMPLE))
    assert receipt.provider_message_id == "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    assert receipt.status == "failed"
    assert receipt.occurred_ms == 1746108000000
    assert receipt.recipient == "+447700900000"
    assert receipt.reference == "abc"
    detail = "TTL was activated, no delivery receipt"
    assert receipt.error == ReceiptError(1360, detail, detail)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("submitted", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("rejected", "failed"),
        ("undeliverable", "failed"),
        ("accepted", None),
    ],
)
def test_vonage_statuses_map_as_the_table_says(given: str, canonical: str | None) -> None:
    (receipt,) = vonage.normalize(json_request({**VONAGE_EXAMPLE, "status": given}))
    assert receipt.status == canonical


@pytest.mark.parametrize(
    "document", [[1], {"status": "delivered"}, {**VONAGE_EXAMPLE, "message_uuid": {"a": 1}}]
)
def test_malformed_vonage_webhooks_are_unreadable(document: Any) -> None:
    with pytest.raises(Unreadable):
        vonage.normalize(json_request(document))
