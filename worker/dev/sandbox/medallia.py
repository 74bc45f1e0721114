"""Strict checks and answers of the Medallia Conversations delivery-receipt look-alike.

The checks follow the vendor document as corrected by the vendor's reference connectors: `time` in
epoch seconds, an integer `error.code`, `error` present exactly for failed/undelivered, and no
`watermark`. The generic JSON-shape checks are in `worker.dev.sandbox.checks`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from worker.dev.sandbox.checks import (
    Checked,
    bearer_problem,
    check_json,
    describe,
    epoch_problems,
    equal_problems,
    is_int,
    json_content_type_problems,
    key_problems,
    lower_headers,
    status_phrase,
    text_problems,
    with_auth,
)

STATUSES = ("failed", "sent", "delivered", "undelivered")
# The vendor requires an `error` object for exactly these statuses.
ERROR_STATUSES = ("failed", "undelivered")


def auth_problem(
    headers: Mapping[str, str], body: bytes, token: str | None = None, hub_secret: str | None = None
) -> str | None:
    """Check the bearer token or, when the channel has a hub secret, the body's signature."""
    problem = bearer_problem(headers, token)
    if problem is None or hub_secret is None:
        return problem
    signature = lower_headers(headers).get("x-hub-signature")
    if signature is None:
        return f"{problem}, or sign the body with 'X-Hub-Signature: sha1=<hex HMAC-SHA1>'"
    digest = hmac.new(hub_secret.encode(), body, hashlib.sha1).hexdigest()
    if hmac.compare_digest(signature.strip().lower().encode(), f"sha1={digest}".encode()):
        return None
    return "header X-Hub-Signature is not sha1=<hex HMAC-SHA1 of the raw body with the secret>"


def _header_problems(headers: Mapping[str, str]) -> list[str]:
    lowered = lower_headers(headers)
    problems = []
    if lowered.get("accept", "").strip() != "text/plain":
        problems.append(f"header accept must be text/plain, got {lowered.get('accept')!r}")
    problems += json_content_type_problems(headers, "content-type")
    return problems


def _id_problems(value: Any, where: str) -> list[str]:
    if (isinstance(value, str) and value) or is_int(value):
        return []
    return [f"{where} must be a non-empty string or an integer, got {describe(value)}"]


def _delivery_problems(delivery: Any, where: str) -> list[str]:
    # watermark is allowed by the key check so that it gets its own, clearer sentence.
    problems = key_problems(delivery, where, ("mids", "status"), ("watermark",))
    if not isinstance(delivery, dict):
        return problems
    if "watermark" in delivery:
        problems.append(f"{where}.watermark is deprecated and must not be sent")
    mids = delivery.get("mids")
    if "mids" in delivery and (not isinstance(mids, list) or not mids):
        problems.append(f"{where}.mids must be a non-empty array of strings, got {describe(mids)}")
    for index, mid in enumerate(mids if isinstance(mids, list) else []):
        problems += text_problems(mid, f"{where}.mids[{index}]")
    if "status" in delivery and delivery["status"] not in STATUSES:
        got = describe(delivery["status"])
        problems.append(f"{where}.status must be one of {', '.join(STATUSES)}, got {got}")
    return problems


def _error_problems(item: dict[str, Any], where: str) -> list[str]:
    delivery = item.get("delivery")
    status = delivery.get("status") if isinstance(delivery, dict) else None
    if status in ERROR_STATUSES and "error" not in item:
        return [f"{where}.error is required when delivery.status is {status}"]
    if status not in ERROR_STATUSES and "error" in item:
        return [f"{where}.error must be absent when delivery.status is {status}"]
    error = item.get("error")
    if "error" not in item:
        return []
    problems = key_problems(error, f"{where}.error", ("code", "name"), ("message",))
    if not isinstance(error, dict):
        return problems
    if "code" in error and not is_int(error["code"]):
        problems.append(f"{where}.error.code must be an integer, got {describe(error['code'])}")
    if "name" in error:
        problems += text_problems(error["name"], f"{where}.error.name")
    if "message" in error and not isinstance(error["message"], str):
        problems.append(f"{where}.error.message must be a string, got {describe(error['message'])}")
    return problems


def _messaging_problems(item: Any, where: str, page_id: Any) -> list[str]:
    problems = key_problems(item, where, ("sender", "recipient", "delivery"), ("error",))
    if not isinstance(item, dict):
        return problems
    for party in ("sender", "recipient"):
        if party in item:
            problems += key_problems(item[party], f"{where}.{party}", ("id",))
        if isinstance(item.get(party), dict) and "id" in item[party]:
            problems += _id_problems(item[party]["id"], f"{where}.{party}.id")
    recipient = item.get("recipient")
    if isinstance(recipient, dict) and "id" in recipient and recipient["id"] != page_id:
        problems.append(f"{where}.recipient.id must equal the entry's id ({page_id!r})")
    if "delivery" in item:
        problems += _delivery_problems(item["delivery"], f"{where}.delivery")
    return problems + _error_problems(item, where)


def _entry_problems(entry: Any, where: str) -> list[str]:
    problems = key_problems(entry, where, ("id", "time", "messaging"))
    if not isinstance(entry, dict):
        return problems
    if "id" in entry:
        problems += _id_problems(entry["id"], f"{where}.id")
    if "time" in entry:
        problems += epoch_problems(entry["time"], f"{where}.time", "seconds")
    messaging = entry.get("messaging")
    if "messaging" in entry and (not isinstance(messaging, list) or not messaging):
        problems.append(f"{where}.messaging must be a non-empty array, got {describe(messaging)}")
    for index, item in enumerate(messaging if isinstance(messaging, list) else []):
        problems += _messaging_problems(item, f"{where}.messaging[{index}]", entry.get("id"))
    return problems


def messages_body_problems(data: Any) -> list[str]:
    """Check the parsed JSON body of a delivery-status request."""
    problems = key_problems(data, "", ("object", "entry"))
    if not isinstance(data, dict):
        return problems
    if "object" in data:
        problems += equal_problems(data["object"], "object", "page")
    entries = data.get("entry")
    if "entry" in data and (not isinstance(entries, list) or not entries):
        problems.append(f"entry must be a non-empty array, got {describe(entries)}")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        problems += _entry_problems(entry, f"entry[{index}]")
    return problems


def check_messages(
    headers: Mapping[str, str], body: bytes, *, hub_secret: str | None = None
) -> Checked:
    """Check a `POST /apis/v0/channels/{guid}/messages` request; give its JSON and problems.

    Authentication is checked for presence only (a bearer, or a signature when `hub_secret` is
    given); comparing with a configured token is `auth_problem`'s job.
    """
    problems = [p for p in [auth_problem(headers, body, None, hub_secret)] if p]
    problems += _header_problems(headers)
    return check_json(body, "the body", problems, messages_body_problems)


def check_request(
    endpoint: str,
    headers: Mapping[str, str],
    body: bytes,
    token: str | None = None,
    hub_secret: str | None = None,
) -> tuple[Any, list[str], str | None]:
    """Check a request as the sandbox does: its JSON, every problem, and any auth problem."""
    checked = check_messages(headers, body, hub_secret=hub_secret)
    return with_auth(checked, auth_problem(headers, body, token, hub_secret))


def answer(
    endpoint: str, status: int, data: Any = None, message: str | None = None
) -> tuple[str, bytes]:
    """Give the content type and body Medallia would send with `status` (`data` is unused)."""
    if 200 <= status < 300:
        return "text/plain; charset=utf-8", b"OK"
    if status == 401:
        reason = message or "the access token is missing or not valid"
        return "text/plain; charset=utf-8", f"Unauthorized: {reason}".encode()
    phrase = status_phrase(status)
    body = {"statusCode": status, "error": phrase, "message": message or phrase}
    return "application/json", json.dumps(body).encode()
