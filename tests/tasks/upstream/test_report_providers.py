"""Infobip delivery reports and SMPP receipts: groups, names, receipt text, batches."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.upstream import infobip, smpp_dlr
from tasks.upstream.receipts import ReceiptError, Unreadable
from tasks.upstream.request import RawRequest
from tests.tasks.upstream.builders import URL, form, infobip_result, json_request

RECEIPT = (
    "id:0000000012345678 sub:001 dlvrd:001 submit date:2601010100 done date:2601010101 "
    "stat:DELIVRD err:000 text:Hello"
)


def test_the_documented_infobip_report() -> None:
    document = {"results": [infobip_result("DELIVERED_TO_HANDSET", "DELIVERED")]}
    (receipt,) = infobip.normalize(json_request(document))
    assert receipt.provider_message_id == "M1"
    assert receipt.status == "delivered"
    assert receipt.occurred_ms == 1573315205000
    assert receipt.recipient == "+41793026727"
    assert (receipt.reference, receipt.error) == ("abc", None)


@pytest.mark.parametrize(
    ("name", "group", "canonical"),
    [
        ("PENDING_ACCEPTED", "PENDING", None),
        ("PENDING_ENROUTE", "PENDING", "sent"),
        ("DELIVERED_TO_OPERATOR", "DELIVERED", "sent"),
        ("DELIVERED_TO_HANDSET", "DELIVERED", "delivered"),
        ("UNDELIVERABLE_REJECTED_OPERATOR", "UNDELIVERABLE", "undelivered"),
        ("EXPIRED_EXPIRED", "EXPIRED", "undelivered"),
        ("REJECTED_NETWORK", "REJECTED", "failed"),
        ("SOMETHING_NEW", "REJECTED", "failed"),
        ("SOMETHING_NEW", "NEWGROUP", None),
    ],
)
def test_infobip_statuses_map_by_name_then_group(
    name: str, group: str, canonical: str | None
) -> None:
    (receipt,) = infobip.normalize(json_request({"results": [infobip_result(name, group)]}))
    assert receipt.status == canonical


def test_an_infobip_failure_takes_its_error_or_else_its_status_as_the_reason() -> None:
    error = {"id": 27, "name": "EC_ABSENT_SUBSCRIBER", "description": "Absent subscriber"}
    with_error = infobip_result("UNDELIVERABLE_NOT_DELIVERED", "UNDELIVERABLE", error=error)
    without = infobip_result("REJECTED_NETWORK", "REJECTED")
    first, second = infobip.normalize(json_request({"results": [with_error, without]}))
    assert first.error == ReceiptError(27, "EC_ABSENT_SUBSCRIBER", "Absent subscriber")
    assert second.error == ReceiptError(5, "REJECTED_NETWORK", "d")


def test_an_infobip_seen_report_is_a_read() -> None:
    seen = {"messageId": "M9", "to": "41793026727", "seenAt": "2019-11-09T16:10:00.000+0000"}
    (receipt,) = infobip.normalize(json_request({"results": [seen]}))
    assert (receipt.status, receipt.occurred_ms) == ("read", 1573315800000)


@pytest.mark.parametrize(
    "document", [[], {"results": {}}, {"results": [1]}, {"results": [{"messageId": "M"}]}]
)
def test_malformed_infobip_reports_are_unreadable(document: Any) -> None:
    with pytest.raises(Unreadable):
        infobip.normalize(json_request(document))


def test_the_documented_smpp_receipt_in_a_form() -> None:
    (receipt,) = smpp_dlr.normalize(form({"receipt": RECEIPT, "to": "4915112345678"}))
    assert receipt.provider_message_id == "0000000012345678"
    assert receipt.status == "delivered"
    assert receipt.occurred_ms == 1767229260000
    assert receipt.recipient == "+4915112345678"


def test_an_smpp_receipt_as_a_plain_text_body_or_in_the_query() -> None:
    plain = RawRequest.build("POST", URL, {"Content-Type": "text/plain"}, RECEIPT.encode())
    query = RawRequest.build("GET", URL + "?receipt=" + RECEIPT.replace(" ", "+"))
    assert smpp_dlr.normalize(plain)[0].status == "delivered"
    assert smpp_dlr.normalize(query)[0].provider_message_id == "0000000012345678"


@pytest.mark.parametrize(
    ("stat", "canonical"),
    [
        ("ENROUTE", "sent"),
        ("ACCEPTD", "sent"),
        ("DELIVRD", "delivered"),
        ("EXPIRED", "undelivered"),
        ("DELETED", "undelivered"),
        ("UNDELIV", "undelivered"),
        ("REJECTD", "failed"),
        ("UNKNOWN", None),
    ],
)
def test_smpp_states_map_as_the_table_says(stat: str, canonical: str | None) -> None:
    text = RECEIPT.replace("stat:DELIVRD err:000", f"stat:{stat} err:011")
    (receipt,) = smpp_dlr.normalize(form({"receipt": text}))
    assert receipt.status == canonical
    if canonical in ("failed", "undelivered"):
        assert receipt.error is not None and receipt.error.code == 11


def test_smpp_fields_are_read_tolerantly_in_any_order_and_case() -> None:
    text = "STAT:UNDELIV  id:abc-1 err:005 done date:260101010159 junk text:x id:zzz"
    (receipt,) = smpp_dlr.normalize(form({"receipt": text}))
    assert (receipt.provider_message_id, receipt.status) == ("abc-1", "undelivered")
    assert receipt.occurred_ms == 1767229319000


@pytest.mark.parametrize("text", ["", "stat:DELIVRD", "id:1 sub:001", "hello"])
def test_smpp_receipts_without_id_or_state_are_unreadable(text: str) -> None:
    with pytest.raises(Unreadable):
        smpp_dlr.normalize(form({"receipt": text}))
