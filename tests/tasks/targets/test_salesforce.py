"""Salesforce Interaction Service requests, checked against the vendor page and PRODUCT.md."""

from __future__ import annotations

import json
import uuid
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest

from tasks.outbound import NotDeliverable, OutboundRequest, Skip
from tasks.schemas import load_event
from tasks.targets import TARGET_KINDS
from tasks.targets.salesforce import KIND, SalesforceOptions

BASE_URL = "https://acme.my.salesforce-scrt.com"
ORG_ID = "00D5g000004xyzA"
CONTEXT = "Partner1_ChannelDefinition1"
OPTIONS = SalesforceOptions(base_url=BASE_URL, org_id=ORG_ID, authorization_context=CONTEXT)
OCCURRED_MS = 1_770_163_786_123
WHERE = "targets.sf-prod"


def event(**overrides: Any) -> Any:
    """A valid `failed` event for the Salesforce target, loaded through the schema."""
    raw: dict[str, Any] = {
        "event_id": "evt-1",
        "target": "sf-prod",
        "status": "failed",
        "message_ids": ["entry-1"],
        "channel": "chan-address-1",
        "recipient": "+4915112345678",
        "occurred_at": OCCURRED_MS,
        "error": {"code": 30003, "name": "Unreachable"},
    }
    raw.update(overrides)
    return load_event({k: v for k, v in raw.items() if v is not ...})


def ack_event(status: str = "delivered", count: int = 1, **overrides: Any) -> Any:
    return event(
        status=status,
        error=...,
        conversation_id="conv-1",
        message_ids=[f"entry-{i}" for i in range(1, count + 1)],
        **overrides,
    )


def requests_of(result: list[OutboundRequest] | Skip) -> list[OutboundRequest]:
    assert isinstance(result, list), result
    return result


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False


def multipart_parts(request: OutboundRequest) -> list[Message]:
    """Parse the body the way a server would: with its Content-Type header in front."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    assert message.is_multipart()
    parts = message.get_payload()
    assert isinstance(parts, list)
    return parts


def interaction_document(request: OutboundRequest) -> Any:
    (part,) = multipart_parts(request)
    assert part.get_param("name", header="content-disposition") == "json"
    assert part.get_content_disposition() == "form-data"
    assert part.get_content_type() == "application/json"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return json.loads(payload)


def expected_interaction(payload_id: str, mid: str, code: str, message: str) -> dict[str, Any]:
    return {
        "to": "chan-address-1",
        "from": "+4915112345678",
        "interactions": [
            {
                "timestamp": OCCURRED_MS,
                "interactionType": "EntryInteraction",
                "payload": {
                    "id": payload_id,
                    "entryType": "MessageDeliveryFailed",
                    "failedConversationEntryIdentifier": mid,
                    "recipient": {
                        "subject": "+4915112345678",
                        "role": "EndUser",
                        "appType": "custom",
                    },
                    "errorCode": code,
                    "errorMessage": message,
                },
            }
        ],
    }


def test_registry_maps_salesforce_kind() -> None:
    # given / when the registry is looked up by kind
    kind = TARGET_KINDS["salesforce"]
    # then it is this module's kind
    assert kind is KIND
    assert kind.name == "salesforce"


# --- failures: one multipart interaction per message id ------------------------------------


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


# --- acknowledgements ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ack_type"),
    [("delivered", "Delivered"), ("read", "Read")],
    ids=["delivered", "read"],
)
def test_acknowledgement_body_is_exactly_the_documented_shape(status: str, ack_type: str) -> None:
    # given a delivered/read event for two messages
    ev = ack_event(status, count=2)
    # when it is translated
    (request,) = requests_of(KIND.translate(ev, OPTIONS))
    # then it is a JSON POST to /api/v1/acknowledgement with exactly PRODUCT.md's body
    assert request.method == "POST"
    assert request.url == f"{BASE_URL}/api/v1/acknowledgement"
    assert request.endpoint == "acknowledgement"
    body = json.loads(request.body)
    created = [
        a["acknowledgmentCreatedConversationEntryIdentifier"] for a in body["acknowledgements"]
    ]
    assert all(is_uuid(c) for c in created)
    assert len(set(created)) == 2
    assert body == {
        "sender": {"appType": "custom", "subject": "+4915112345678", "role": "EndUser"},
        "conversationIdentifier": "conv-1",
        "acknowledgements": [
            {
                "acknowledgementTimestamp": OCCURRED_MS,
                "acknowledgementType": ack_type,
                "acknowledgedConversationEntryIdentifier": f"entry-{i}",
                "acknowledgmentCreatedConversationEntryIdentifier": created[i - 1],
            }
            for i in (1, 2)
        ],
    }


def test_acknowledgement_headers_are_json_with_org_context_and_request_id() -> None:
    # given a delivered event
    ev = ack_event()
    # when it is translated
    (request,) = requests_of(KIND.translate(ev, OPTIONS))
    # then the headers carry JSON content type, OrgId, AuthorizationContext and a UUID RequestId
    headers = dict(request.headers)
    assert is_uuid(headers.pop("RequestId"))
    assert headers == {
        "Content-Type": "application/json",
        "OrgId": ORG_ID,
        "AuthorizationContext": CONTEXT,
    }


@pytest.mark.parametrize(
    ("count", "chunk_sizes"),
    [(1, [1]), (25, [25]), (26, [25, 1]), (100, [25, 25, 25, 25])],
    ids=["1", "25", "26", "100"],
)
def test_acknowledgements_are_chunked_25_per_request(count: int, chunk_sizes: list[int]) -> None:
    # given a delivered event for `count` messages
    ev = ack_event(count=count)
    # when it is translated
    requests = requests_of(KIND.translate(ev, OPTIONS))
    # then the messages are split, in order, into chunks of at most 25
    assert [len(r.message_ids) for r in requests] == chunk_sizes
    all_ids = [f"entry-{i}" for i in range(1, count + 1)]
    assert [mid for r in requests for mid in r.message_ids] == all_ids
    for request in requests:
        acked = [
            a["acknowledgedConversationEntryIdentifier"]
            for a in json.loads(request.body)["acknowledgements"]
        ]
        assert acked == list(request.message_ids)
    assert len({r.headers["RequestId"] for r in requests}) == len(requests)


@pytest.mark.parametrize("status", ["delivered", "read"])
def test_acknowledgement_without_conversation_id_is_not_deliverable(status: str) -> None:
    # given a delivered/read event without conversation_id
    ev = event(status=status, error=...)
    # when it is translated
    with pytest.raises(NotDeliverable) as caught:
        KIND.translate(ev, OPTIONS)
    # then the refusal names the missing field
    assert "conversation_id" in str(caught.value)


def test_acknowledgement_translation_is_byte_identical_when_repeated() -> None:
    # given the same acknowledgement event twice
    first, second = ack_event(count=30), ack_event(count=30)
    # when both are translated
    a = requests_of(KIND.translate(first, OPTIONS))
    b = requests_of(KIND.translate(second, OPTIONS))
    # then the requests are identical
    assert a == b


def test_acknowledgement_ids_differ_between_event_ids() -> None:
    # given two acknowledgement events differing only in event id
    first, second = ack_event(event_id="evt-1"), ack_event(event_id="evt-2")
    # when both are translated
    (one,) = requests_of(KIND.translate(first, OPTIONS))
    (two,) = requests_of(KIND.translate(second, OPTIONS))
    # then RequestId and the created entry id differ
    key = "acknowledgmentCreatedConversationEntryIdentifier"
    assert one.headers["RequestId"] != two.headers["RequestId"]
    assert (
        json.loads(one.body)["acknowledgements"][0][key]
        != json.loads(two.body)["acknowledgements"][0][key]
    )


def test_sent_is_skipped() -> None:
    # given a sent event
    ev = event(status="sent", error=...)
    # when it is translated
    result = KIND.translate(ev, OPTIONS)
    # then nothing is sent
    assert isinstance(result, Skip)
    assert "sent" in result.reason


# --- parse_options -------------------------------------------------------------------------

GOOD_TABLE = {
    "kind": "salesforce",
    "base_url": BASE_URL,
    "org_id": ORG_ID,
    "authorization_context": CONTEXT,
}


@pytest.mark.parametrize(
    ("org_id", "expected"),
    [
        pytest.param(ORG_ID, ORG_ID, id="15-chars"),
        pytest.param(ORG_ID + "AAQ", ORG_ID, id="18-chars-cut-to-15"),
        pytest.param(f"  {ORG_ID}  ", ORG_ID, id="surrounding-spaces"),
    ],
)
def test_parse_options_accepts_good_table(org_id: str, expected: str) -> None:
    # given a complete target table
    table = {**GOOD_TABLE, "org_id": org_id}
    # when it is parsed
    options, problems = KIND.parse_options(table, WHERE)
    # then there are no problems and the org id is the 15-character form
    assert problems == []
    assert options == SalesforceOptions(BASE_URL, expected, CONTEXT)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        pytest.param({"org_id": ...}, f"{WHERE}.org_id: required", id="org-id-missing"),
        pytest.param({"org_id": ""}, f"{WHERE}.org_id: required", id="org-id-empty"),
        pytest.param({"org_id": 15}, f"{WHERE}.org_id: required", id="org-id-not-string"),
        pytest.param({"org_id": ORG_ID[:14]}, f"{WHERE}.org_id: must be a 15-", id="org-id-14"),
        pytest.param({"org_id": ORG_ID + "A"}, f"{WHERE}.org_id: must be a 15-", id="org-id-16"),
        pytest.param({"org_id": ORG_ID + "AA"}, f"{WHERE}.org_id: must be a 15-", id="org-id-17"),
        pytest.param({"org_id": ORG_ID + "AAAA"}, f"{WHERE}.org_id: must be a 15-", id="org-id-19"),
        pytest.param(
            {"org_id": "00D5g000004xy-A"}, f"{WHERE}.org_id: must be a 15-", id="org-id-bad-char"
        ),
        pytest.param(
            {"authorization_context": ...},
            f"{WHERE}.authorization_context: required",
            id="context-missing",
        ),
    ],
)
def test_parse_options_reports_bad_table(change: dict[str, Any], fragment: str) -> None:
    # given a target table with one bad key
    table = {k: v for k, v in {**GOOD_TABLE, **change}.items() if v is not ...}
    # when it is parsed
    _, problems = KIND.parse_options(table, WHERE)
    # then exactly one problem names the key
    assert len(problems) == 1
    assert fragment in problems[0]


def test_a_channel_longer_than_the_api_allows_is_not_deliverable() -> None:
    # given a failure whose channel address is longer than Salesforce's 240 characters
    too_long = event(status="failed", channel="c" * 241)

    # when it is translated, then it is refused with the field named
    with pytest.raises(NotDeliverable, match="channel"):
        KIND.translate(too_long, OPTIONS)
