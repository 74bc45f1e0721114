"""Providers' callbacks, correctly signed: what `relay dev`, `relay sandbox --play`, the tests
and the bench send to an ingress. Each builder follows the provider's own recipe (Twilio's
RequestValidator, Meta's X-Hub-Signature-256, Vonage's signed JWT, a token for the others)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import jwt

from tasks.upstream.signatures import meta_signature, twilio_signature


@dataclass(frozen=True)
class Callback:
    """One HTTP request a provider would make."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Message:
    """What a callback reports: a provider message, its status, and optional details."""

    message_id: str
    status: str
    recipient: str = "15551234567"
    error_code: str | None = None
    reference: dict[str, Any] | None = None
    timestamp: int = field(default_factory=lambda: int(time.time()))


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def twilio(url: str, secret: str, messages: list[Message]) -> Callback:
    """A status callback (one message), signed with the auth token; the echoed reference goes
    in the `relay_ref` query parameter of the callback URL."""
    (message,) = messages
    if message.reference is not None:
        url += ("&" if "?" in url else "?") + "relay_ref=" + quote(compact(message.reference))
    fields = {
        "MessageSid": message.message_id,
        "SmsSid": message.message_id,
        "MessageStatus": message.status,
        "SmsStatus": message.status,
        "To": "+" + message.recipient,
        "From": "+15017122661",
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
    }
    if message.error_code:
        fields["ErrorCode"] = message.error_code
    signature = twilio_signature(secret, url, list(fields.items()), "HMAC_SHA1")
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return Callback("POST", url, headers, urlencode(fields).encode())


def _whatsapp_status(message: Message) -> dict[str, Any]:
    status: dict[str, Any] = {
        "id": message.message_id,
        "status": message.status,
        "timestamp": str(message.timestamp),
        "recipient_id": message.recipient,
    }
    if message.reference is not None:
        status["biz_opaque_callback_data"] = compact(message.reference)
    if message.error_code:
        status["errors"] = [
            {"code": int(message.error_code), "title": "Message undeliverable", "message": "x"}
        ]
    return status


def whatsapp(url: str, secret: str, messages: list[Message]) -> Callback:
    """A Cloud API webhook carrying every message's status, signed with the app secret."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1065"},
        "statuses": [_whatsapp_status(m) for m in messages],
    }
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1023", "changes": [{"field": "messages", "value": value}]}],
    }
    body = compact(document).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": meta_signature(secret, body),
    }
    return Callback("POST", url, headers, body)


def vonage_token(secret: str, body: bytes, issued: float | None = None) -> str:
    """The signed JWT Vonage sends: HS256, iat, jti, api_key and the body's SHA-256."""
    claims = {
        "iat": int(time.time() if issued is None else issued),
        "jti": str(uuid.uuid4()),
        "api_key": "abcd1234",
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def vonage(url: str, secret: str, messages: list[Message]) -> Callback:
    """A Messages API status webhook (one message), signed with the signature secret."""
    (message,) = messages
    document: dict[str, Any] = {
        "message_uuid": message.message_id,
        "to": message.recipient,
        "from": "447700900001",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(message.timestamp)),
        "status": message.status,
        "channel": "sms",
    }
    if message.reference is not None:
        document["client_ref"] = compact(message.reference)
    if message.error_code:
        document["error"] = {
            "type": f"https://developer.vonage.com/api-errors/messages#{message.error_code}",
            "title": message.error_code,
            "detail": "TTL was activated, no delivery receipt",
        }
    body = compact(document).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Bearer " + vonage_token(secret, body),
    }
    return Callback("POST", url, headers, body)


def _basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"relay:{secret}".encode()).decode()


def _infobip_result(message: Message) -> dict[str, Any]:
    done = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(message.timestamp))
    group = message.status.partition("_")[0]
    result: dict[str, Any] = {
        "bulkId": "B1",
        "messageId": message.message_id,
        "to": message.recipient,
        "sentAt": done,
        "doneAt": done,
        "status": {"groupId": 0, "groupName": group, "id": 0, "name": message.status},
        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"},
    }
    if message.reference is not None:
        result["callbackData"] = compact(message.reference)
    if message.error_code:
        result["error"] = {"id": int(message.error_code), "name": "EC_ABSENT_SUBSCRIBER"}
    return result


def infobip(url: str, secret: str, messages: list[Message]) -> Callback:
    """A delivery report with every message's result, the token as the Basic password."""
    body = compact({"results": [_infobip_result(m) for m in messages]}).encode()
    headers = {"Content-Type": "application/json", "Authorization": _basic(secret)}
    return Callback("POST", url, headers, body)


def smpp_dlr(url: str, secret: str, messages: list[Message]) -> Callback:
    """A gateway's DLR callback (one receipt, form-encoded), the token as a query parameter."""
    (message,) = messages
    stamp = time.strftime("%y%m%d%H%M", time.gmtime(message.timestamp))
    receipt = (
        f"id:{message.message_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} "
        f"stat:{message.status} err:{message.error_code or '000'} text:Hello"
    )
    url += ("&" if "?" in url else "?") + "token=" + quote(secret)
    body = urlencode({"receipt": receipt, "to": message.recipient}).encode()
    return Callback("POST", url, {"Content-Type": "application/x-www-form-urlencoded"}, body)


BUILDERS: dict[str, Callable[[str, str, list[Message]], Callback]] = {
    "twilio": twilio,
    "whatsapp": whatsapp,
    "vonage": vonage,
    "infobip": infobip,
    "smpp_dlr": smpp_dlr,
}
"""Each provider kind's signed callback, by kind: (ingress URL, secret, messages)."""
