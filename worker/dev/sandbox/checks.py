"""Small reusable checks of JSON shapes and HTTP headers, shared by the vendor look-alikes.

Each `*_problems` function gives a list of problem sentences (empty when all is well) naming
where in the request the problem is; `*_problem` functions give one sentence or None.
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Checked = tuple[Any, list[str]]

# Epoch bounds (inclusive start, exclusive end): plausible dates between 2001 and 2286, and far
# enough apart that a value in the wrong unit can be named as such.
EPOCH_RANGES = {"milliseconds": (10**12, 10**13), "seconds": (10**9, 10**10)}


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


def check_json(
    raw: bytes, where: str, problems: list[str], body_problems: Callable[[Any], list[str]]
) -> Checked:
    """Parse `raw` strictly and check it with `body_problems`, after the `problems` found so far."""
    data, json_problems = load_json(raw, where)
    if json_problems:
        return None, problems + json_problems
    return data, problems + body_problems(data)


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


def with_auth(checked: Checked, auth: str | None) -> tuple[Any, list[str], str | None]:
    """Give a check's JSON and problems, the auth problem joining the problems once, and it."""
    data, problems = checked
    if auth is not None and auth not in problems:
        problems.append(auth)
    return data, problems, auth


def status_phrase(status: int) -> str:
    """Give the standard reason phrase of an HTTP status, or "Error" for one it does not know."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
