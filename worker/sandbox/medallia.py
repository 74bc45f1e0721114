"""Strict checks and answers of the Medallia Conversations delivery-receipt look-alike.

The checks follow the vendor document as corrected by PRODUCT.md: `time` in epoch seconds, an
integer `error.code`, `error` present exactly for failed/undelivered, and no `watermark`. The
generic JSON-shape helpers at the top are shared with the Salesforce module, which imports them.
"""

from __future__ import annotations

import hashlib
import hmac
import http
import json
from collections.abc import Iterable, Mapping
from typing import Any

Checked = tuple[Any, list[str]]

# Epoch bounds (inclusive start, exclusive end): plausible dates between 2001 and 2286, and far
# enough apart that a value in the wrong unit can be named as such.
EPOCH_RANGES = {"milliseconds": (10**12, 10**13), "seconds": (10**9, 10**10)}
STATUSES = ("failed", "sent", "delivered", "undelivered")
# The vendor requires an `error` object for exactly these statuses.
ERROR_STATUSES = ("failed", "undelivered")


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Index headers by lower-case name, since HTTP header names are case-insensitive."""
    return {name.lower(): value for name, value in headers.items()}


def describe(value: Any) -> str:
    """Name a JSON value's type and show it, for problem sentences."""
    kinds = {bool: "a boolean", str: "a string", int: "an integer", float: "a number"}
    kinds.update({list: "an array", dict: "an object", type(None): "null"})
    shown = json.dumps(value)
    return f"{kinds.get(type(value), type(value).__name__)} {shown[:60]}"


def is_int(value: Any) -> bool:
    """Tell a JSON integer apart, rejecting booleans although Python counts them as ints."""
    return isinstance(value, int) and not isinstance(value, bool)


def load_json(raw: bytes, where: str) -> Checked:
    """Parse UTF-8 JSON strictly: no NaN/Infinity and no repeated keys, which servers reject."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"repeated key(s) {', '.join(repeated)}")
        return dict(pairs)

    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates), []
    except ValueError as exc:
        return None, [f"{where} is not valid UTF-8 JSON: {exc}"]


def key_problems(
    obj: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()
) -> list[str]:
    """Check that `obj` is an object holding every required key and nothing unexpected."""
    if not isinstance(obj, dict):
        return [f"{where or 'the body'} must be an object, got {describe(obj)}"]
    prefix = f"{where}." if where else ""
    required = list(required)
    allowed = set(required) | set(optional)
    problems = [f"{prefix}{key} is required" for key in required if key not in obj]
    problems += [f"{prefix}{key} is not allowed here" for key in obj if key not in allowed]
    return problems


def text_problems(value: Any, where: str, max_len: int | None = None) -> list[str]:
    """Check for a non-empty string, optionally no longer than `max_len` characters."""
    if not isinstance(value, str) or not value:
        return [f"{where} must be a non-empty string, got {describe(value)}"]
    if max_len is not None and len(value) > max_len:
        return [f"{where} must be at most {max_len} characters, got {len(value)}"]
    return []


def equal_problems(value: Any, where: str, expected: Any) -> list[str]:
    """Check for one exact value."""
    if value == expected and type(value) is type(expected):
        return []
    return [f"{where} must be {json.dumps(expected)}, got {describe(value)}"]


def epoch_problems(value: Any, where: str, unit: str) -> list[str]:
    """Check for an integer epoch timestamp in `unit`, naming the likely unit mix-up."""
    if not is_int(value):
        return [f"{where} must be an integer in epoch {unit}, got {describe(value)}"]
    low, high = EPOCH_RANGES[unit]
    if low <= value < high:
        return []
    for other, (other_low, other_high) in EPOCH_RANGES.items():
        if other != unit and other_low <= value < other_high:
            return [f"{where} must be in epoch {unit}, got {value}, which is in epoch {other}"]
    return [f"{where} must be in epoch {unit} (from {low} to {high}), got {value}"]


def bearer_problem(headers: Mapping[str, str], expected: str | None = None) -> str | None:
    """Check `Authorization: Bearer <token>`, against `expected` when a token is configured."""
    value = lower_headers(headers).get("authorization")
    if value is None:
        return "header Authorization is missing; send 'Authorization: Bearer <token>'"
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "header Authorization must be 'Bearer <token>' with a non-empty token"
    if expected is not None and token.strip() != expected:
        return "header Authorization holds a bearer token that is not the configured one"
    return None


def json_content_type_problems(headers: Mapping[str, str], name: str) -> list[str]:
    """Check for `application/json`, allowing only a UTF-8 charset, since JSON is UTF-8."""
    content_type = lower_headers(headers).get("content-type", "")
    media_type, _, params = content_type.partition(";")
    charset = params.strip().lower().replace('"', "")
    if media_type.strip().lower() == "application/json" and charset in ("", "charset=utf-8"):
        return []
    return [f"header {name} must be application/json, got {content_type or None!r}"]


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
    data, json_problems = load_json(body, "the body")
    if json_problems:
        return None, problems + json_problems
    return data, problems + messages_body_problems(data)


def check_request(
    endpoint: str,
    headers: Mapping[str, str],
    body: bytes,
    token: str | None = None,
    hub_secret: str | None = None,
) -> tuple[Any, list[str], str | None]:
    """Check a request as the sandbox does: its JSON, every problem, and any auth problem."""
    data, problems = check_messages(headers, body, hub_secret=hub_secret)
    auth = auth_problem(headers, body, token, hub_secret)
    if auth is not None and auth not in problems:
        problems.append(auth)
    return data, problems, auth


def answer(
    endpoint: str, status: int, data: Any = None, message: str | None = None
) -> tuple[str, bytes]:
    """Give the content type and body Medallia would send with `status` (`data` is unused)."""
    if 200 <= status < 300:
        return "text/plain; charset=utf-8", b"OK"
    if status == 401:
        reason = message or "the access token is missing or not valid"
        return "text/plain; charset=utf-8", f"Unauthorized: {reason}".encode()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {"statusCode": status, "error": phrase, "message": message or phrase}
    return "application/json", json.dumps(body).encode()
