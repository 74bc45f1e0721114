"""Salesforce failures: one multipart MessageDeliveryFailed interaction per message id."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.outbound import OutboundRequest
from tasks.targets.salesforce import KIND, SalesforceOptions
from tests.tasks.targets.salesforce_builders import (
    BASE_URL,
    CONTEXT,
    OCCURRED_MS,
    OPTIONS,
    ORG_ID,
    event,
    expected_interaction,
    interaction_document,
    is_uuid,
    requests_of,
)


@pytest.mark.parametrize("status", ["failed", "undelivered"])
def test_failure_posts_multipart_to_interactions_endpoint(status: str) -> None:
    # given a failure event
    ev = event(status=status)
    # when it is translated
    (request,) = requests_of(KIND.translate(ev, OPTIONS))
    # then it is a POST of multipart/form-data to /api/v1/interactions
    assert request.method == "POST"
    assert request.url == f"{BASE_URL}/api/v1/interactions"
    assert request.api == "salesforce"
    assert request.endpoint == "interactions"
    assert request.message_ids == ("entry-1",)


def test_failure_headers_follow_vendor_page_without_authorization() -> None:
    # given a failure event
    ev = event()
    # when it is translated
    (request,) = requests_of(KIND.translate(ev, OPTIONS))
    # then the documented headers are there and Authorization is left to the transport
    headers = dict(request.headers)
    content_type = headers.pop("Content-Type")
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1]
    assert 1 <= len(boundary) <= 70
    assert request.body.startswith(f"--{boundary}\r\n".encode())
    assert request.body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert is_uuid(headers.pop("RequestId"))
    assert headers == {"OrgId": ORG_ID, "AuthorizationContext": CONTEXT}
    assert len(ORG_ID) == 15
    assert not any(name.lower() == "authorization" for name in request.headers)


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        pytest.param({"code": 30003, "name": "Unreachable"}, "30003", "Unreachable", id="int-code"),
        pytest.param({"code": "E42", "name": "Blocked"}, "E42", "Blocked", id="string-code"),
        pytest.param(
            {"code": 207, "name": "Unavailable", "message": "Unable to deliver the message(s)"},
            "207",
            "Unable to deliver the message(s)",
            id="message-preferred-to-name",
        ),
        pytest.param(
            {"code": 1, "name": "Zustellung fehlgeschlagen", "message": "Gerät aus — später"},
            "1",
            "Gerät aus — später",
            id="non-ascii-message",
        ),
    ],
)
def test_failure_body_is_one_json_part_with_exact_interaction(
    error: dict[str, Any], code: str, message: str
) -> None:
    # given a failed event with the given error
    ev = event(error=error)
    # when it is translated
    (request,) = requests_of(KIND.translate(ev, OPTIONS))
    # then the body holds exactly one part, named json, with the documented interaction
    document = interaction_document(request)
    payload_id = document["interactions"][0]["payload"]["id"]
    assert is_uuid(payload_id)
    assert document == expected_interaction(payload_id, "entry-1", code, message)


def test_failure_timestamp_is_integer_epoch_milliseconds() -> None:
    # given a failure that happened at an ISO time with milliseconds
    ev = event(occurred_at="2026-02-04T00:09:46.123Z")
    # when it is translated
    (request,) = requests_of(KIND.translate(ev, OPTIONS))
    # then timestamp is an int in ms (the vendor page wrongly says boolean)
    timestamp = interaction_document(request)["interactions"][0]["timestamp"]
    assert type(timestamp) is int
    assert timestamp == OCCURRED_MS


def test_failure_sends_one_request_per_message_id() -> None:
    # given a failure for three messages
    ev = event(message_ids=["entry-1", "entry-2", "entry-3"])
    # when it is translated
    requests = requests_of(KIND.translate(ev, OPTIONS))
    # then each message id gets its own request holding just that id
    assert [r.message_ids for r in requests] == [("entry-1",), ("entry-2",), ("entry-3",)]
    failed_ids = [
        interaction_document(r)["interactions"][0]["payload"]["failedConversationEntryIdentifier"]
        for r in requests
    ]
    assert failed_ids == ["entry-1", "entry-2", "entry-3"]
    assert all(len(interaction_document(r)["interactions"]) == 1 for r in requests)


def test_failure_translation_is_byte_identical_when_repeated() -> None:
    # given the same event twice
    first, second = event(), event()
    # when both are translated
    a = requests_of(KIND.translate(first, OPTIONS))
    b = requests_of(KIND.translate(second, OPTIONS))
    # then ids, RequestId, boundary and body are all the same
    assert a == b
    assert a[0].body == b[0].body


def test_failure_ids_differ_between_message_ids() -> None:
    # given one event failing two messages
    ev = event(message_ids=["entry-1", "entry-2"])
    # when it is translated
    one, two = requests_of(KIND.translate(ev, OPTIONS))
    # then payload id, RequestId and boundary differ
    assert _ids(one) != _ids(two)
    assert all(x != y for x, y in zip(_ids(one), _ids(two), strict=True))


def test_failure_ids_differ_between_event_ids() -> None:
    # given two events for the same message with different event ids
    first, second = event(event_id="evt-1"), event(event_id="evt-2")
    # when both are translated
    (one,) = requests_of(KIND.translate(first, OPTIONS))
    (two,) = requests_of(KIND.translate(second, OPTIONS))
    # then every generated id differs
    assert all(x != y for x, y in zip(_ids(one), _ids(two), strict=True))


def _ids(request: OutboundRequest) -> tuple[str, str, str]:
    payload_id = interaction_document(request)["interactions"][0]["payload"]["id"]
    return payload_id, request.headers["RequestId"], request.headers["Content-Type"]


def test_base_url_with_trailing_slash_is_joined_without_double_slash() -> None:
    # given options whose base_url ends in a slash
    options = SalesforceOptions(BASE_URL + "/", ORG_ID, CONTEXT)
    # when a failure is translated
    (request,) = requests_of(KIND.translate(event(), options))
    # then the URL has a single slash before the path
    assert request.url == f"{BASE_URL}/api/v1/interactions"
