"""Events and request readers the Salesforce translator tests share."""

from __future__ import annotations

import json
import uuid
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tasks.outbound import OutboundRequest, Skip
from tasks.schemas import load_event
from tasks.targets.salesforce import SalesforceOptions

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
