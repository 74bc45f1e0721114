"""Medallia Conversations delivery receipts, against the vendor page and its known corrections."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.outbound import NotDeliverable, OutboundRequest, Skip
from tasks.schemas import load_event
from tasks.targets import TARGET_KINDS
from tasks.targets.medallia import KIND, MedalliaOptions

BASE_URL = "https://conversations.sc4.medallia.com"
GUID = "6f1c2a5e-0000-4000-8000-000000000001"
OPTIONS = MedalliaOptions(base_url=BASE_URL, channel_guid=GUID)
WHERE = "targets.medallia-eu"
ERROR_207 = {"code": 207, "name": "Unavailable", "message": "Unable to deliver the message(s)"}


def event(**overrides: Any) -> Any:
    """A valid `delivered` event for the Medallia target, loaded through the schema."""
    raw: dict[str, Any] = {
        "event_id": "evt-1",
        "target": "medallia-eu",
        "status": "delivered",
        "message_ids": ["msg_id_1", "msg_id_2"],
        "channel": "page_id",
        "recipient": "+4915112345678",
        "occurred_at": 1_770_163_786_999,
    }
    raw.update(overrides)
    return load_event(raw)


def only_request(result: list[OutboundRequest] | Skip) -> OutboundRequest:
    assert isinstance(result, list), result
    (request,) = result
    return request


def expected_body(status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    messaging: dict[str, Any] = {
        "sender": {"id": "+4915112345678"},
        "recipient": {"id": "page_id"},
        "delivery": {"mids": ["msg_id_1", "msg_id_2"], "status": status},
    }
    if error is not None:
        messaging["error"] = error
    return {
        "object": "page",
        "entry": [{"id": "page_id", "time": 1_770_163_786, "messaging": [messaging]}],
    }


def test_registry_maps_medallia_kind() -> None:
    # given / when the registry is looked up by kind
    kind = TARGET_KINDS["medallia"]
    # then it is this module's kind
    assert kind is KIND
    assert kind.name == "medallia"


@pytest.mark.parametrize("status", ["sent", "delivered", "failed", "undelivered"])
def test_request_line_and_headers_follow_vendor_page(status: str) -> None:
    # given an event of any status Medallia takes
    ev = event(status=status, error=ERROR_207 if status in ("failed", "undelivered") else None)
    # when it is translated
    request = only_request(KIND.translate(ev, OPTIONS))
    # then it is a POST to the channel's messages URL with exactly the documented headers
    assert request.method == "POST"
    assert request.url == f"{BASE_URL}/apis/v0/channels/{GUID}/messages"
    assert request.api == "medallia"
    assert request.endpoint == "messages"
    assert dict(request.headers) == {"accept": "text/plain", "content-type": "application/json"}
    assert request.message_ids == ("msg_id_1", "msg_id_2")


@pytest.mark.parametrize(
    ("status", "error", "expected_error"),
    [
        pytest.param("sent", None, None, id="sent"),
        pytest.param("delivered", None, None, id="delivered"),
        pytest.param("failed", ERROR_207, ERROR_207, id="failed-with-message"),
        pytest.param(
            "undelivered",
            {"code": 30003, "name": "Unreachable"},
            {"code": 30003, "name": "Unreachable"},
            id="undelivered-without-message",
        ),
        pytest.param(
            "failed",
            {"code": "207", "name": "Unavailable"},
            {"code": 207, "name": "Unavailable"},
            id="numeric-string-code-converted",
        ),
        pytest.param(
            "failed",
            {"code": " -12 ", "name": "Negative"},
            {"code": -12, "name": "Negative"},
            id="signed-string-code-converted",
        ),
    ],
)
def test_body_is_exactly_the_documented_receipt(
    status: str, error: dict[str, Any] | None, expected_error: dict[str, Any] | None
) -> None:
    # given an event of `status`
    ev = event(status=status, error=error)
    # when it is translated
    request = only_request(KIND.translate(ev, OPTIONS))
    # then the body is the receipt with all mids in one request, time in whole seconds,
    # and error only for failures
    assert json.loads(request.body) == expected_body(status, expected_error)


@pytest.mark.parametrize("status", ["sent", "delivered", "failed", "undelivered"])
def test_body_has_no_deprecated_watermark(status: str) -> None:
    # given an event of any status
    ev = event(status=status, error=ERROR_207 if status in ("failed", "undelivered") else None)
    # when it is translated
    request = only_request(KIND.translate(ev, OPTIONS))
    # then nothing beyond the documented fields is sent
    assert b"watermark" not in request.body
    assert b"routingAttributes" not in request.body


@pytest.mark.parametrize(
    ("occurred_at", "time"),
    [
        pytest.param(1_770_163_786, 1_770_163_786, id="epoch-seconds"),
        pytest.param(1_770_163_786_999, 1_770_163_786, id="epoch-ms-rounded-down"),
        pytest.param("2026-02-04T00:09:46.999Z", 1_770_163_786, id="iso-fraction-rounded-down"),
        pytest.param("2026-02-04T02:09:46+02:00", 1_770_163_786, id="iso-with-offset"),
    ],
)
def test_time_is_integer_epoch_seconds_rounded_down(occurred_at: Any, time: int) -> None:
    # given an event with `occurred_at`
    ev = event(occurred_at=occurred_at)
    # when it is translated
    request = only_request(KIND.translate(ev, OPTIONS))
    # then entry.time is whole epoch seconds
    value = json.loads(request.body)["entry"][0]["time"]
    assert type(value) is int
    assert value == time


# The vendor page's two curl examples, copied verbatim.
VENDOR_DELIVERED_EXAMPLE = {
    "object": "page",
    "entry": [
        {
            "id": "page_id",
            "time": 1770163786,
            "messaging": [
                {
                    "sender": {"id": "customer_id"},
                    "recipient": {"id": "page_id"},
                    "delivery": {"mids": ["msg_id_1", "msg_id_2"], "status": "delivered"},
                }
            ],
        }
    ],
}
VENDOR_FAILED_EXAMPLE = {
    "object": "page",
    "entry": [
        {
            "id": "page_id",
            "time": 1770163786,
            "messaging": [
                {
                    "sender": {"id": "customer_id"},
                    "recipient": {"id": "page_id"},
                    "delivery": {"mids": ["msg_id_1", "msg_id_2"], "status": "failed"},
                    "error": {
                        "code": 207,
                        "name": "Unavailable",
                        "message": "Unable to deliver the message(s)",
                    },
                }
            ],
        }
    ],
}


@pytest.mark.parametrize(
    ("status", "error", "example"),
    [
        pytest.param("delivered", None, VENDOR_DELIVERED_EXAMPLE, id="delivered-example"),
        pytest.param("failed", ERROR_207, VENDOR_FAILED_EXAMPLE, id="failed-207-unavailable"),
    ],
)
def test_translation_reproduces_vendor_examples(
    status: str, error: dict[str, Any] | None, example: dict[str, Any]
) -> None:
    # given the event behind one of the vendor page's examples
    ev = event(status=status, error=error, recipient="customer_id", occurred_at=1770163786)
    options = MedalliaOptions(base_url=BASE_URL, channel_guid="channel-guid")
    # when it is translated
    request = only_request(KIND.translate(ev, options))
    # then URL and body are the example's
    assert (
        request.url
        == "https://conversations.sc4.medallia.com/apis/v0/channels/channel-guid/messages"
    )
    assert json.loads(request.body) == example


@pytest.mark.parametrize("code", ["E42", "2.5", "12a", "0x1F"])
def test_non_numeric_error_code_is_not_deliverable(code: str) -> None:
    # given a failure whose code is a non-numeric string
    ev = event(status="failed", error={"code": code, "name": "Blocked"})
    # when it is translated
    with pytest.raises(NotDeliverable) as caught:
        KIND.translate(ev, OPTIONS)
    # then the refusal names error.code
    assert "error.code" in str(caught.value)


def test_read_is_skipped() -> None:
    # given a read event
    ev = event(status="read")
    # when it is translated
    result = KIND.translate(ev, OPTIONS)
    # then nothing is sent
    assert isinstance(result, Skip)
    assert "read" in result.reason


def test_translation_is_byte_identical_when_repeated() -> None:
    # given the same failure event twice
    first = event(status="failed", error=ERROR_207)
    second = event(status="failed", error=ERROR_207)
    # when both are translated
    a, b = KIND.translate(first, OPTIONS), KIND.translate(second, OPTIONS)
    # then the requests are identical
    assert a == b


def test_base_url_with_trailing_slash_is_joined_without_double_slash() -> None:
    # given options whose base_url ends in a slash
    options = MedalliaOptions(base_url=BASE_URL + "/", channel_guid=GUID)
    # when an event is translated
    request = only_request(KIND.translate(event(), options))
    # then the URL has a single slash before the path
    assert request.url == f"{BASE_URL}/apis/v0/channels/{GUID}/messages"


def test_parse_options_accepts_good_table() -> None:
    # given a complete target table
    table = {"kind": "medallia", "base_url": BASE_URL, "channel_guid": GUID}
    # when it is parsed
    options, problems = KIND.parse_options(table, WHERE)
    # then there are no problems
    assert problems == []
    assert options == MedalliaOptions(base_url=BASE_URL, channel_guid=GUID)


@pytest.mark.parametrize(
    ("guid", "fragment"),
    [
        pytest.param(..., f"{WHERE}.channel_guid: required", id="missing"),
        pytest.param("", f"{WHERE}.channel_guid: required", id="empty"),
        pytest.param(42, f"{WHERE}.channel_guid: required", id="not-a-string"),
        pytest.param("abc/def", f"{WHERE}.channel_guid: letters", id="slash"),
        pytest.param("a" * 65, f"{WHERE}.channel_guid: letters", id="too-long"),
    ],
)
def test_parse_options_reports_bad_channel_guid(guid: Any, fragment: str) -> None:
    # given a target table with a bad channel_guid
    table = {"kind": "medallia", "base_url": BASE_URL, "channel_guid": guid}
    table = {k: v for k, v in table.items() if v is not ...}
    # when it is parsed
    _, problems = KIND.parse_options(table, WHERE)
    # then exactly one problem names it
    assert len(problems) == 1
    assert fragment in problems[0]


@pytest.mark.parametrize(
    ("recipient", "sender_id"),
    [
        pytest.param("+49 151 1234-5678", "+4915112345678", id="spaces-and-dash"),
        pytest.param("+(1) 555.123.4567", "+15551234567", id="brackets-and-dots"),
        pytest.param("+4915112345678", "+4915112345678", id="already-e164"),
        pytest.param("4915112345678", "4915112345678", id="channel-id-left-alone"),
        pytest.param("user@example.com", "user@example.com", id="email-left-alone"),
    ],
)
def test_formatted_phone_numbers_are_sent_in_e164(recipient: str, sender_id: str) -> None:
    # given an event whose recipient is written for people
    # when it is translated
    request = only_request(KIND.translate(event(recipient=recipient), OPTIONS))

    # then the sender id is the E.164 form the vendor page requires
    assert json.loads(request.body)["entry"][0]["messaging"][0]["sender"]["id"] == sender_id
