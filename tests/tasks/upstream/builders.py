"""Requests the normalizer tests read: the providers' documented examples."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tasks.upstream.request import RawRequest

URL = "https://relay.example.com/v1/receipts/src"


def form(fields: dict[str, str], url: str = URL) -> RawRequest:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return RawRequest.build("POST", url, headers, urlencode(fields).encode())


def json_request(document: Any, url: str = URL) -> RawRequest:
    body = json.dumps(document).encode()
    return RawRequest.build("POST", url, {"Content-Type": "application/json"}, body)


def whatsapp_status(**fields: Any) -> dict[str, Any]:
    """A Cloud API webhook with one status (the documented example's shape)."""
    status = {
        "id": "wamid.HBgL",
        "status": "delivered",
        "timestamp": "1750857384",
        "recipient_id": "16505551234",
        **fields,
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1065"},
        "statuses": [status],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def infobip_result(name: str, group: str, **fields: Any) -> dict[str, Any]:
    return {
        "bulkId": "B1",
        "messageId": "M1",
        "to": "41793026727",
        "sentAt": "2019-11-09T16:00:00.000+0000",
        "doneAt": "2019-11-09T16:00:05.000+0000",
        "callbackData": "abc",
        "status": {"groupId": 3, "groupName": group, "id": 5, "name": name, "description": "d"},
        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": False},
        **fields,
    }
