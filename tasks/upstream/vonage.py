"""Vonage Messages API message-status webhooks (JSON POST, one message each)."""

from __future__ import annotations

from typing import Any

from tasks.events import Status
from tasks.upstream import times
from tasks.upstream.receipts import (
    DEFAULT_MAX_RECEIPTS,
    Receipt,
    ReceiptError,
    Unreadable,
    code_of,
    normalize_recipient,
    text_field,
)
from tasks.upstream.request import RawRequest

KIND = "vonage"
STATUSES: dict[str, Status | None] = {
    "submitted": "sent",
    "delivered": "delivered",
    "read": "read",
    "rejected": "failed",
    "undeliverable": "failed",
}


def error_of(error: Any) -> ReceiptError | None:
    """`{type, title, detail}`: the code is the title ("1360") or the type URL's fragment."""
    if not isinstance(error, dict):
        return None
    title = error.get("title") if isinstance(error.get("title"), str | int) else None
    kind: str = error["type"] if isinstance(error.get("type"), str) else ""
    raw = title if title not in (None, "") else kind.rpartition("#")[2]
    if raw in (None, ""):
        return None
    code = code_of(str(raw))
    detail = error.get("detail") if isinstance(error.get("detail"), str) else None
    name = str(title) if title and not str(title).isdigit() else (detail or f"Vonage error {code}")
    return ReceiptError(code, name[:200], detail[:2000] if detail else None)


def normalize(request: RawRequest, limit: int = DEFAULT_MAX_RECEIPTS) -> list[Receipt]:
    """The one receipt of a message-status webhook."""
    item = request.json()
    if not isinstance(item, dict):
        raise Unreadable("vonage: the body must be a JSON object")
    uuid = text_field(item, "message_uuid", "vonage status") or ""
    status = (text_field(item, "status", "vonage status") or "").lower()
    reference = item.get("client_ref")
    return [
        Receipt(
            kind=KIND,
            provider_message_id=uuid[:200],
            status=STATUSES.get(status),
            provider_status=status[:100],
            occurred_ms=times.iso(item.get("timestamp")),
            recipient=normalize_recipient(item.get("to")),
            error=error_of(item.get("error")),
            reference=reference if isinstance(reference, str) and reference else None,
        )
    ]
