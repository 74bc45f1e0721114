"""The one place that decides what an HTTP answer means: delivered, retry later, or permanent.

The table (also in the README):

| answer | outcome |
|---|---|
| no answer (connect error, timeout, dropped connection) | retry |
| 2xx from Medallia | delivered |
| 2xx from Salesforce with a JSON body whose `success` is not false | delivered |
| 2xx from Salesforce with `"success": false` | by its error code (below); other codes permanent |
| 2xx from Salesforce whose body is not JSON | retry (the answer cannot be trusted) |
| Salesforce error code 10003, 10004, 10005, 10037, 10038 (any status) | permanent |
| Salesforce 408, 429, 5xx but 501/505, whatever else the body says | retry (outage pages) |
| Salesforce error code 10019, 10055, 10056, 10094 (any other status) | retry |
| 3xx | permanent (redirects are not followed: fix base_url) |
| 401 | retry (credentials may be refreshed or fixed) |
| 408, 409, 425, 429 | retry, waiting at least Retry-After |
| other 4xx | permanent |
| 500, 502, 503, 504 and any other 5xx but 501, 505 | retry, waiting at least Retry-After |
| 501, 505 | permanent |
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

RETRYABLE_SALESFORCE_CODES = frozenset({10019, 10055, 10056, 10094})
PERMANENT_SALESFORCE_CODES = frozenset({10003, 10004, 10005, 10037, 10038})
RETRYABLE_STATUSES = frozenset({401, 408, 409, 425, 429})
PERMANENT_5XX = frozenset({501, 505})
_CODE = re.compile(r"^[0-9]{1,9}$")


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What came back from one request: a status and body excerpt, or a network error."""

    status: int | None
    body: bytes = b""
    retry_after: float | None = None
    duration: float = 0.0
    network_error: str | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """The target accepted the request."""

    word: ClassVar[str] = "delivered"
    """What logs and attempt histories call this outcome."""


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Try again later; `after` is the minimum wait the target asked for, if any."""

    reason: str
    after: float | None = None
    word: ClassVar[str] = "retry"


@dataclass(frozen=True, slots=True)
class Permanent:
    """Retrying cannot help; the event becomes a `rejected` dead letter."""

    reason: str
    word: ClassVar[str] = "permanent"


Outcome = Delivered | RetryLater | Permanent


def classify(api: str, result: HttpResult) -> Outcome:
    """Decide what `result` means for a request to `api` ("salesforce" or "medallia")."""
    if result.status is None:
        return RetryLater(f"no answer: {result.network_error or 'connection failed'}", None)
    status = result.status
    what = f"HTTP {status}{_excerpt(result.body)}"
    if api == "salesforce":
        by_code = _salesforce_code_outcome(status, result.body, what, result.retry_after)
        if by_code is not None:
            return by_code
    if 200 <= status < 300:
        return Delivered()
    if 300 <= status < 400:
        return Permanent(f"{what} (redirects are not followed: check the target's base_url)")
    if status in RETRYABLE_STATUSES or _retried_by_status(status):
        return RetryLater(what, result.retry_after)
    return Permanent(what)


def _retried_by_status(status: int) -> bool:
    """Statuses that mean the target (not the request) failed: retried whatever the body."""
    return status in (408, 429) or (status >= 500 and status not in PERMANENT_5XX)


def _salesforce_code_outcome(
    status: int, body: bytes, what: str, retry_after: float | None
) -> Outcome | None:
    """Salesforce's permanent error codes override the status; the status of an outage comes
    before any other word of the body; a 2xx must say `success` plainly."""
    document = _json_object(body)
    if 200 <= status < 300 and document is None:
        return RetryLater(f"{what} (a 2xx whose body is not a JSON object cannot be trusted)")
    if document is None:
        return None
    code = _error_code(document)
    if code in PERMANENT_SALESFORCE_CODES:
        return Permanent(f"{what} (Salesforce error {code})")
    if _retried_by_status(status):
        return None
    if code in RETRYABLE_SALESFORCE_CODES:
        return RetryLater(f"{what} (Salesforce error {code}, retryable)", retry_after)
    if document.get("success") is False:
        return Permanent(f"{what} (Salesforce answered success: false)")
    return None


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested past reason
        return None
    return value if isinstance(value, dict) else None


def _error_code(document: dict[str, Any], depth: int = 0) -> int | None:
    """The error code a Salesforce error body names, at its top or in a nested error."""
    for key in ("code", "errorCode", "apiErrorCode"):
        raw = document.get(key)
        if isinstance(raw, bool):
            continue
        if isinstance(raw, int):
            return raw
        # Only ASCII digits, and few of them: "²".isdigit() is true, and int() of thousands of
        # digits raises.
        if isinstance(raw, str) and _CODE.match(raw.strip()):
            return int(raw.strip())
    nested = document.get("errorDetail") or document.get("errors")
    if isinstance(nested, dict) and depth < 3:
        return _error_code(nested, depth + 1)
    return None


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    if not text:
        return ""
    text = " ".join(text.split())
    return f": {text}{'…' if len(body) > limit else ''}"
