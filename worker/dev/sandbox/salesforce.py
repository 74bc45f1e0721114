"""Strict checks and answers of the Salesforce Interaction Service look-alike.

The checks follow the vendor document as corrected by the facts its page gets wrong (listed
in docs/concepts/event.md): they are pure functions so that tests and tools can check a request
without a server.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from worker.dev.sandbox.checks import (
    Checked,
    bearer_problem,
    check_json,
    describe,
    epoch_problems,
    equal_problems,
    json_content_type_problems,
    key_problems,
    lower_headers,
    status_phrase,
    text_problems,
    with_auth,
)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ORG_ID = re.compile(r"[A-Za-z0-9]{15}")
MAX_ACKNOWLEDGEMENTS = 25
_TOP_KEYS = ("to", "from", "interactions")
_INTERACTION_KEYS = ("timestamp", "interactionType", "payload")
_PAYLOAD_KEYS = ("id", "entryType", "failedConversationEntryIdentifier", "recipient", "errorCode")
_ACK_TOP_KEYS = ("sender", "conversationIdentifier", "acknowledgements")
_ACK_KEYS = (
    "acknowledgementTimestamp",
    "acknowledgementType",
    "acknowledgedConversationEntryIdentifier",
    "acknowledgmentCreatedConversationEntryIdentifier",
)
_TOKEN_INVALID = "The supplied Authorization access token is not valid."


def is_uuid(value: Any) -> bool:
    """Tell whether a value is a UUID string in canonical 8-4-4-4-12 hex form."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def _header_problems(headers: Mapping[str, str]) -> list[str]:
    lowered = lower_headers(headers)
    problems = [p for p in [bearer_problem(headers)] if p]
    org_id = lowered.get("orgid")
    if org_id is None or not _ORG_ID.fullmatch(org_id):
        problems.append(f"header OrgId must be exactly 15 letters or digits, got {org_id!r}")
    if not lowered.get("authorizationcontext", "").strip():
        problems.append("header AuthorizationContext is required and must not be empty")
    request_id = lowered.get("requestid")
    if not is_uuid(request_id):
        problems.append(f"header RequestId must be a UUID (8-4-4-4-12 hex), got {request_id!r}")
    return problems


def _json_part(content_type: str, body: bytes) -> tuple[bytes | None, list[str]]:
    """Extract the single `json` part of a multipart/form-data body."""
    synthetic = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message = BytesParser(policy=HTTP).parsebytes(synthetic)
    if message.get_content_type() != "multipart/form-data" or not message.get_param("boundary"):
        got = content_type or None
        return None, [f"header Content-Type must be multipart/form-data; boundary=..., got {got!r}"]
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if message.defects or not parts:
        return None, ["body is not valid multipart/form-data for the boundary in Content-Type"]
    if len(parts) != 1:
        return None, [f"body must have exactly one multipart part (named json), got {len(parts)}"]
    part, problems = parts[0], []
    name = part.get_param("name", header="content-disposition")
    if part.get_content_disposition() != "form-data" or name != "json":
        problems.append(f"the multipart part must be 'form-data; name=\"json\"', got name {name!r}")
    if part["content-type"] is None or part.get_content_type() != "application/json":
        problems.append(
            f"the json part's Content-Type must be application/json, got {part['content-type']!r}"
        )
    raw = part.get_payload(decode=True)
    return (raw if isinstance(raw, bytes) else b""), problems


def _recipient_problems(recipient: Any, where: str, end_user: Any) -> list[str]:
    problems = key_problems(recipient, where, ("subject", "role", "appType"))
    if not isinstance(recipient, dict):
        return problems
    subject = recipient.get("subject")
    if "subject" in recipient and (not isinstance(subject, str) or subject != end_user):
        problems.append(f"{where}.subject must equal from ({end_user!r}), got {describe(subject)}")
    if "role" in recipient:
        problems += equal_problems(recipient["role"], f"{where}.role", "EndUser")
    if "appType" in recipient:
        problems += equal_problems(recipient["appType"], f"{where}.appType", "custom")
    return problems


def _payload_problems(payload: Any, where: str, end_user: Any) -> list[str]:
    problems = key_problems(payload, where, _PAYLOAD_KEYS, ("errorMessage",))
    if not isinstance(payload, dict):
        return problems
    if "id" in payload and not is_uuid(payload["id"]):
        problems.append(f"{where}.id must be a UUID string, got {describe(payload['id'])}")
    if "entryType" in payload:
        problems += equal_problems(
            payload["entryType"], f"{where}.entryType", "MessageDeliveryFailed"
        )
    for key in ("failedConversationEntryIdentifier", "errorCode"):
        if key in payload:
            problems += text_problems(payload[key], f"{where}.{key}")
    if "errorMessage" in payload and not isinstance(payload["errorMessage"], str):
        problems.append(
            f"{where}.errorMessage must be a string, got {describe(payload['errorMessage'])}"
        )
    if "recipient" in payload:
        problems += _recipient_problems(payload["recipient"], f"{where}.recipient", end_user)
    return problems


def _interaction_problems(item: Any, where: str, end_user: Any) -> list[str]:
    problems = key_problems(item, where, _INTERACTION_KEYS)
    if not isinstance(item, dict):
        return problems
    if "timestamp" in item:
        problems += epoch_problems(item["timestamp"], f"{where}.timestamp", "milliseconds")
    if "interactionType" in item:
        problems += equal_problems(
            item["interactionType"], f"{where}.interactionType", "EntryInteraction"
        )
    if "payload" in item:
        problems += _payload_problems(item["payload"], f"{where}.payload", end_user)
    return problems


def interaction_body_problems(data: Any) -> list[str]:
    """Check the parsed `json` part of an interaction request."""
    problems = key_problems(data, "", _TOP_KEYS)
    if not isinstance(data, dict):
        return problems
    for key in ("to", "from"):
        if key in data:
            problems += text_problems(data[key], key, max_len=240)
    items = data.get("interactions")
    if "interactions" in data and (not isinstance(items, list) or len(items) != 1):
        got = f"{len(items)} items" if isinstance(items, list) else describe(items)
        problems.append(f"interactions must be an array of exactly one interaction, got {got}")
    if isinstance(items, list) and items:
        problems += _interaction_problems(items[0], "interactions[0]", data.get("from"))
    return problems


def check_interaction(headers: Mapping[str, str], body: bytes) -> Checked:
    """Check a `POST /api/v1/interactions` request; give its parsed json part and problems."""
    problems = _header_problems(headers)
    raw, part_problems = _json_part(lower_headers(headers).get("content-type", ""), body)
    problems += part_problems
    if raw is None:
        return None, problems
    return check_json(raw, "the json part", problems, interaction_body_problems)


def _acknowledgement_problems(item: Any, where: str) -> list[str]:
    problems = key_problems(item, where, _ACK_KEYS)
    if not isinstance(item, dict):
        return problems
    stamp, kind = item.get("acknowledgementTimestamp"), item.get("acknowledgementType")
    if "acknowledgementTimestamp" in item:
        problems += epoch_problems(stamp, f"{where}.acknowledgementTimestamp", "milliseconds")
    if "acknowledgementType" in item and kind not in ("Delivered", "Read"):
        problems.append(
            f"{where}.acknowledgementType must be Delivered or Read, got {describe(kind)}"
        )
    if "acknowledgedConversationEntryIdentifier" in item:
        problems += text_problems(item[_ACK_KEYS[2]], f"{where}.{_ACK_KEYS[2]}")
    if _ACK_KEYS[3] in item and not is_uuid(item[_ACK_KEYS[3]]):
        problems.append(
            f"{where}.{_ACK_KEYS[3]} must be a UUID string, got {describe(item[_ACK_KEYS[3]])}"
        )
    return problems


def acknowledgement_body_problems(data: Any) -> list[str]:
    """Check the JSON body of an acknowledgement request."""
    problems = key_problems(data, "", _ACK_TOP_KEYS)
    if not isinstance(data, dict):
        return problems
    sender = data.get("sender")
    if "sender" in data:
        problems += key_problems(sender, "sender", ("appType", "subject", "role"))
    if isinstance(sender, dict):
        problems += equal_problems(sender.get("appType"), "sender.appType", "custom")
        problems += text_problems(sender.get("subject"), "sender.subject")
        problems += equal_problems(sender.get("role"), "sender.role", "EndUser")
    if "conversationIdentifier" in data:
        problems += text_problems(data["conversationIdentifier"], "conversationIdentifier", 240)
    acks = data.get("acknowledgements")
    if "acknowledgements" in data and (
        not isinstance(acks, list) or not 1 <= len(acks) <= MAX_ACKNOWLEDGEMENTS
    ):
        got = f"{len(acks)} items" if isinstance(acks, list) else describe(acks)
        problems.append(
            f"acknowledgements must be an array of 1 to {MAX_ACKNOWLEDGEMENTS} items, got {got}"
        )
    for index, item in enumerate(acks if isinstance(acks, list) else []):
        problems += _acknowledgement_problems(item, f"acknowledgements[{index}]")
    return problems


def check_acknowledgement(headers: Mapping[str, str], body: bytes) -> Checked:
    """Check a `POST /api/v1/acknowledgement` request; give its parsed JSON and problems."""
    problems = _header_problems(headers)
    problems += json_content_type_problems(headers, "Content-Type")
    return check_json(body, "the body", problems, acknowledgement_body_problems)


def check_request(
    endpoint: str,
    headers: Mapping[str, str],
    body: bytes,
    token: str | None = None,
    hub_secret: str | None = None,
) -> tuple[Any, list[str], str | None]:
    """Check a request as the sandbox does: its JSON, every problem, and any auth problem.

    `token` is the configured bearer token, if any; `hub_secret` is unused (Medallia only).
    """
    check = check_interaction if endpoint == "interactions" else check_acknowledgement
    return with_auth(check(headers, body), bearer_problem(headers, token))


def answer(endpoint: str, status: int, data: Any, message: str | None = None) -> tuple[str, bytes]:
    """Give the content type and body Salesforce would send with `status` for this request."""
    body: dict[str, Any]
    if 200 <= status < 300 and endpoint == "interactions":
        payload_id = _payload_id(data) or str(uuid.uuid4())
        body = {"conversationIdentifier": str(uuid.uuid4()), "id": payload_id}
        body |= {"workItemIds": [], "success": True}
    elif 200 <= status < 300:
        body = {"success": True}
    elif status == 401:
        body = {"code": 10004, "message": _TOKEN_INVALID}
    elif status == 400:
        body = {"code": 10016, "message": message or "The request is not valid."}
    else:
        body = {"code": status, "message": _reason(status)}
    if endpoint == "acknowledgement" and not 200 <= status < 300:
        body = {"success": False} | body
    return "application/json", json.dumps(body).encode()


def _payload_id(data: Any) -> str | None:
    try:
        payload_id = data["interactions"][0]["payload"]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return payload_id if isinstance(payload_id, str) else None


def _reason(status: int) -> str:
    phrase = status_phrase(status)
    return f"{phrase}. Try again later." if status in (429, 500, 502, 503, 504) else phrase
