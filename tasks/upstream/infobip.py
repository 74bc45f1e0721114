"""Infobip SMS delivery reports (JSON POST, `results` of up to 100 messages)."""

from __future__ import annotations

from typing import Any

from tasks.events import Status
from tasks.upstream import times
from tasks.upstream.receipts import (
    DEFAULT_MAX_RECEIPTS,
    Receipt,
    ReceiptError,
    Unreadable,
    at_most,
    code_of,
    normalize_recipient,
    text_field,
)
from tasks.upstream.request import RawRequest

KIND = "infobip"
# Exact status names first, then name prefixes, then the group's name.
EXACT: dict[str, Status | None] = {
    "PENDING_ACCEPTED": None,
    "DELIVERED_TO_HANDSET": "delivered",
    "DELIVERED_TO_OPERATOR": "sent",
}
PREFIXES: dict[str, Status] = {
    "PENDING_": "sent",
    "DELIVERED_": "sent",
    "UNDELIVERABLE_": "undelivered",
    "EXPIRED_": "undelivered",
    "REJECTED_": "failed",
}
GROUPS: dict[str, Status] = {
    "PENDING": "sent",
    "DELIVERED": "sent",
    "UNDELIVERABLE": "undelivered",
    "EXPIRED": "undelivered",
    "REJECTED": "failed",
}


def status_of(name: str, group: str) -> Status | None:
    if name in EXACT:
        return EXACT[name]
    prefix = next((p for p in PREFIXES if name.startswith(p)), None)
    return PREFIXES[prefix] if prefix else GROUPS.get(group)


def _error(item: dict[str, Any], status: dict[str, Any]) -> ReceiptError | None:
    """The report's `error` when it names one, else (for a failure) the status itself."""
    for source in (item.get("error"), status):
        if not isinstance(source, dict):
            continue
        code, name = source.get("id"), source.get("name")
        if code in (None, "", 0, "0") or not isinstance(name, str) or name == "NO_ERROR":
            continue
        description = source.get("description")
        message = description[:2000] if isinstance(description, str) and description else None
        return ReceiptError(code_of(str(code)), name[:200], message)
    return None


def receipt_of(item: Any) -> Receipt:
    if not isinstance(item, dict):
        raise Unreadable("infobip: a result must be an object")
    message_id = text_field(item, "messageId", "infobip result") or ""
    status = item.get("status")
    state: Status | None
    if status is None and item.get("seenAt"):  # a seen report: the message was read
        name, group, state, status = "SEEN", "SEEN", "read", {}
    elif isinstance(status, dict):
        name = str(status.get("name") or "").upper()
        group = str(status.get("groupName") or "").upper()
        state = status_of(name, group)
    else:
        raise Unreadable("infobip: a result needs a 'status' object")
    reference = item.get("callbackData")
    return Receipt(
        kind=KIND,
        provider_message_id=message_id[:200],
        status=state,
        provider_status=(name or group)[:100],
        occurred_ms=times.iso(item.get("doneAt") or item.get("seenAt")),
        recipient=normalize_recipient(item.get("to")),
        error=_error(item, status) if state in ("failed", "undelivered") else None,
        reference=reference if isinstance(reference, str) and reference else None,
    )


def normalize(request: RawRequest, limit: int = DEFAULT_MAX_RECEIPTS) -> list[Receipt]:
    """Every result of the report (`TooManyReceipts` past `limit`, before making any)."""
    document = request.json()
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise Unreadable("infobip: the body must be an object with a 'results' list")
    return [receipt_of(item) for item in at_most(results, limit)]
