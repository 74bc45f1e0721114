"""Salesforce acknowledgements: Delivered/Read, 25 per request; sent is skipped."""

from __future__ import annotations

import json

import pytest

from tasks.outbound import NotDeliverable, Skip
from tasks.targets.salesforce import KIND
from tests.tasks.targets.salesforce_builders import (
    BASE_URL,
    CONTEXT,
    OCCURRED_MS,
    OPTIONS,
    ORG_ID,
    ack_event,
    event,
    is_uuid,
    requests_of,
)


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
    # then it is a JSON POST to /api/v1/acknowledgement with exactly the documented body
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
