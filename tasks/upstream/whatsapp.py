"""Meta WhatsApp Cloud API webhooks: the `statuses` of every entry and change (JSON POST)."""

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

KIND = "whatsapp"
STATUSES: dict[str, Status | None] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "deleted": None,
}


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Unreadable(f"whatsapp: '{where}' must be a list, got {type(value).__name__}")
    return value


def statuses_of(document: Any, limit: int = DEFAULT_MAX_RECEIPTS) -> list[Any]:
    """Every status object of a webhook, in order; inbound `messages` and other fields are
    not receipts and are passed over. `TooManyReceipts` as soon as there are over `limit`."""
    if not isinstance(document, dict):
        raise Unreadable("whatsapp: the body must be a JSON object")
    found: list[Any] = []
    for entry in _list(document.get("entry"), "entry"):
        if not isinstance(entry, dict):
            raise Unreadable("whatsapp: an entry must be an object")
        for change in _list(entry.get("changes"), "changes"):
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict):
                found = at_most(found + _list(value.get("statuses"), "statuses"), limit)
    return found


def error_of(item: dict[str, Any]) -> ReceiptError | None:
    """The first of a status's `errors`, as code, title and message or details."""
    errors = item.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict) or first.get("code") in (None, ""):
        return None
    code = code_of(str(first["code"]))
    title = first.get("title") if isinstance(first.get("title"), str) else None
    details = (first.get("error_data") or {}) if isinstance(first.get("error_data"), dict) else {}
    message = first.get("message") or details.get("details")
    return ReceiptError(
        code,
        (title or f"WhatsApp error {code}")[:200],
        message[:2000] if isinstance(message, str) and message else None,
    )


def receipt_of(item: Any) -> Receipt:
    if not isinstance(item, dict):
        raise Unreadable("whatsapp: a status must be an object")
    wamid = text_field(item, "id", "whatsapp status") or ""
    status = (text_field(item, "status", "whatsapp status") or "").lower()
    reference = item.get("biz_opaque_callback_data")
    return Receipt(
        kind=KIND,
        provider_message_id=wamid[:200],
        status=STATUSES.get(status),
        provider_status=status[:100],
        occurred_ms=times.epoch_seconds(item.get("timestamp")),
        recipient=normalize_recipient(item.get("recipient_id")),
        error=error_of(item),
        reference=reference if isinstance(reference, str) and reference else None,
    )


def normalize(request: RawRequest, limit: int = DEFAULT_MAX_RECEIPTS) -> list[Receipt]:
    """Every status in the webhook (none when it carries only inbound messages)."""
    return [receipt_of(item) for item in statuses_of(request.json(), limit)]
