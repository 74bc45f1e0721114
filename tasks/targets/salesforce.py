"""Salesforce Interaction Service API: MessageDeliveryFailed interactions and acknowledgements.

Follows the vendor page on MessageDeliveryFailed interactions with the corrections the vendor's
OpenAPI files and reference connectors show: `timestamp` is epoch ms, `errorCode` a string, exactly
one interaction per request, and the acknowledgement body as the vendor's OpenAPI file has it
(including its "acknowledgment" key).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tasks.events import Event
from tasks.outbound import (
    Merged,
    NotDeliverable,
    OutboundRequest,
    Skip,
    coalesce,
    dump_json,
    load_json,
    stable_id,
)
from tasks.targets.base import join_url, required_text

ACKS_PER_REQUEST = 25
_ORG_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_ACK_TYPES = {"delivered": "Delivered", "read": "Read"}
_HEADER_TEXT = re.compile(r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$")
MAX_ADDRESS = 240  # the API's limit on `to` (channel address identifier)


@dataclass(frozen=True, slots=True)
class SalesforceOptions:
    """The target-table keys a Salesforce target needs."""

    base_url: str
    org_id: str
    authorization_context: str


class SalesforceKind:
    """Registry entry for `kind = "salesforce"`."""

    name = "salesforce"
    auth_types = frozenset({"bearer", "jwt_bearer"})

    def parse_options(
        self, table: Mapping[str, Any], where: str
    ) -> tuple[SalesforceOptions, list[str]]:
        problems: list[str] = []
        org_id = required_text(table, "org_id", where, problems)
        if org_id and not _ORG_ID.match(org_id):
            problems.append(f"{where}.org_id: must be a 15- or 18-character Salesforce org id")
        context = required_text(table, "authorization_context", where, problems)
        if context and not _HEADER_TEXT.match(context):
            problems.append(
                f"{where}.authorization_context: printable ASCII without line breaks "
                "(it is sent as a header)"
            )
        options = SalesforceOptions(
            base_url=str(table.get("base_url", "")),
            # The API wants the 15-character form; an 18-character id only adds a checksum.
            org_id=org_id[:15],
            authorization_context=context,
        )
        return options, problems

    def translate(self, event: Event, options: Any) -> list[OutboundRequest] | Skip:
        assert isinstance(options, SalesforceOptions)
        if event.status in ("failed", "undelivered"):
            if len(event.channel) > MAX_ADDRESS:
                raise NotDeliverable(f"channel: Salesforce allows at most {MAX_ADDRESS} characters")
            return [_failure_request(event, options, mid) for mid in event.message_ids]
        if event.status in _ACK_TYPES:
            return _ack_requests(event, options)
        return Skip(f"Salesforce has no delivery notice for status {event.status!r}")

    def coalesce(self, requests: Sequence[OutboundRequest]) -> list[Merged]:
        """Acknowledgements of one conversation and sender share requests, 25 at most each;
        a MessageDeliveryFailed interaction always travels alone (one per request)."""
        return coalesce(requests, _same_conversation, _ack_count, ACKS_PER_REQUEST, _merge_acks)


KIND = SalesforceKind()


def _same_conversation(request: OutboundRequest) -> Hashable | None:
    if request.endpoint != "acknowledgement":
        return None
    body = load_json(request.body)
    sender = body["sender"]
    return (request.url, body["conversationIdentifier"], sender["subject"], sender["appType"])


def _ack_count(request: OutboundRequest) -> int:
    return len(request.message_ids)


def _merge_acks(requests: list[OutboundRequest]) -> OutboundRequest:
    bodies = [load_json(r.body) for r in requests]
    body = {**bodies[0], "acknowledgements": [a for b in bodies for a in b["acknowledgements"]]}
    request_id = stable_id(*(r.headers["RequestId"] for r in requests))
    return replace(
        requests[0],
        headers={**requests[0].headers, "RequestId": request_id},
        body=dump_json(body),
        message_ids=tuple(mid for r in requests for mid in r.message_ids),
    )


def _headers(options: SalesforceOptions, request_id: str, content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "OrgId": options.org_id,
        "AuthorizationContext": options.authorization_context,
        "RequestId": request_id,
    }


def _failure_request(event: Event, options: SalesforceOptions, mid: str) -> OutboundRequest:
    """One MessageDeliveryFailed interaction for one message id, as multipart/form-data."""
    boundary = "relay-" + stable_id(event.event_id, mid, "boundary").replace("-", "")
    content_type = f"multipart/form-data; boundary={boundary}"
    return OutboundRequest(
        api="salesforce",
        endpoint="interactions",
        method="POST",
        url=join_url(options.base_url, "/api/v1/interactions"),
        headers=_headers(options, stable_id(event.event_id, mid, "request"), content_type),
        body=_json_part(boundary, _failure_document(event, mid)),
        message_ids=(mid,),
    )


def _failure_document(event: Event, mid: str) -> dict[str, Any]:
    """The `json` part: the channel address, the end user, and exactly one interaction."""
    assert event.error is not None  # the schema guarantees it for failure statuses
    payload: dict[str, Any] = {
        "id": stable_id(event.event_id, mid, "interaction"),
        "entryType": "MessageDeliveryFailed",
        "failedConversationEntryIdentifier": mid,
        "recipient": {"subject": event.recipient, "role": "EndUser", "appType": "custom"},
        "errorCode": str(event.error.code),
        "errorMessage": event.error.message or event.error.name,
    }
    interaction = {
        "timestamp": event.occurred_ms,
        "interactionType": "EntryInteraction",
        "payload": payload,
    }
    return {"to": event.channel, "from": event.recipient, "interactions": [interaction]}


def _json_part(boundary: str, document: dict[str, Any]) -> bytes:
    """A multipart/form-data body whose one part, named `json`, holds `document`."""
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="json"\r\n'
        "Content-Type: application/json\r\n\r\n"
    )
    return head.encode() + dump_json(document) + f"\r\n--{boundary}--\r\n".encode()


def _ack_requests(event: Event, options: SalesforceOptions) -> list[OutboundRequest]:
    if not event.conversation_id:
        raise NotDeliverable(
            f"conversation_id: required for a Salesforce {event.status!r} acknowledgement"
        )
    ack_type = _ACK_TYPES[event.status]
    requests = []
    for start in range(0, len(event.message_ids), ACKS_PER_REQUEST):
        chunk = event.message_ids[start : start + ACKS_PER_REQUEST]
        body = {
            "sender": {"appType": "custom", "subject": event.recipient, "role": "EndUser"},
            "conversationIdentifier": event.conversation_id,
            "acknowledgements": [
                {
                    "acknowledgementTimestamp": event.occurred_ms,
                    "acknowledgementType": ack_type,
                    "acknowledgedConversationEntryIdentifier": mid,
                    "acknowledgmentCreatedConversationEntryIdentifier": stable_id(
                        event.event_id, mid, "ack"
                    ),
                }
                for mid in chunk
            ],
        }
        requests.append(
            OutboundRequest(
                api="salesforce",
                endpoint="acknowledgement",
                method="POST",
                url=join_url(options.base_url, "/api/v1/acknowledgement"),
                headers=_headers(
                    options, stable_id(event.event_id, *chunk, "request"), "application/json"
                ),
                body=dump_json(body),
                message_ids=tuple(chunk),
            )
        )
    return requests
