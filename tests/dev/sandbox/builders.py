"""Request builders for the sandbox tests: valid vendor requests and ways to spoil them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import requests

END_USER = "+15550001234"
PAGE = "page_1"
SF_INTERACTIONS = "/salesforce/api/v1/interactions"
SF_ACK = "/salesforce/api/v1/acknowledgement"
MEDALLIA = "/medallia/apis/v0/channels/6f1c2a5e-0000-4000-8000-000000000001/messages"
Mutation = Callable[[dict[str, str], dict[str, Any]], None]


def sf_headers() -> dict[str, str]:
    return {
        "Authorization": "Bearer sf-token",
        "OrgId": "00D5g000004xyzA",
        "AuthorizationContext": "Partner1_ChannelDefinition1",
        "RequestId": str(uuid.uuid4()),
    }


def interaction_body() -> dict[str, Any]:
    payload = {
        "id": str(uuid.uuid4()),
        "entryType": "MessageDeliveryFailed",
        "failedConversationEntryIdentifier": "entry-1",
        "recipient": {"subject": END_USER, "role": "EndUser", "appType": "custom"},
        "errorCode": "207",
        "errorMessage": "Unavailable",
    }
    interaction = {
        "timestamp": 1770163786000,
        "interactionType": "EntryInteraction",
        "payload": payload,
    }
    return {"to": "channel-address", "from": END_USER, "interactions": [interaction]}


def ack_body(kind: str = "Delivered", count: int = 1) -> dict[str, Any]:
    ack = {
        "acknowledgementTimestamp": 1770163786000,
        "acknowledgementType": kind,
        "acknowledgedConversationEntryIdentifier": "entry-1",
        "acknowledgmentCreatedConversationEntryIdentifier": str(uuid.uuid4()),
    }
    return {
        "sender": {"appType": "custom", "subject": END_USER, "role": "EndUser"},
        "conversationIdentifier": "conversation-1",
        "acknowledgements": [dict(ack) for _ in range(count)],
    }


def medallia_headers() -> dict[str, str]:
    return {
        "accept": "text/plain",
        "authorization": "Bearer medallia-token",
        "content-type": "application/json",
    }


def medallia_body(status: str = "delivered") -> dict[str, Any]:
    item: dict[str, Any] = {
        "sender": {"id": END_USER},
        "recipient": {"id": PAGE},
        "delivery": {"mids": ["msg_1", "msg_2"], "status": status},
    }
    if status in ("failed", "undelivered"):
        item["error"] = {"code": 207, "name": "Unavailable", "message": "Unable to deliver"}
    return {"object": "page", "entry": [{"id": PAGE, "time": 1770163786, "messaging": [item]}]}


def post_interaction(
    url: str, headers: dict[str, str], body: dict[str, Any], part: str = "json"
) -> requests.Response:
    files = {part: (None, json.dumps(body), "application/json")}
    return requests.post(url + SF_INTERACTIONS, headers=headers, files=files, timeout=5)


def post_json(url: str, path: str, headers: dict[str, str], body: Any) -> requests.Response:
    data = json.dumps(body).encode()
    return requests.post(url + path, headers=headers, data=data, timeout=5)


def post_ack(url: str, headers: dict[str, str], body: dict[str, Any]) -> requests.Response:
    return post_json(url, SF_ACK, {**headers, "Content-Type": "application/json"}, body)


def set_at(path: list[Any], value: Any) -> Mutation:
    def mutate(headers: dict[str, str], body: dict[str, Any]) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def set_header(name: str, value: str | None) -> Mutation:
    def mutate(headers: dict[str, str], body: dict[str, Any]) -> None:
        if value is None:
            del headers[name]
        else:
            headers[name] = value

    return mutate
