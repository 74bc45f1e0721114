"""Twilio Programmable Messaging status callbacks (form-encoded POST, one message each)."""

from __future__ import annotations

from tasks.events import Status
from tasks.upstream import times
from tasks.upstream.receipts import (
    DEFAULT_MAX_RECEIPTS,
    Receipt,
    ReceiptError,
    Unreadable,
    code_of,
    normalize_recipient,
)
from tasks.upstream.request import RawRequest

KIND = "twilio"
REFERENCE_PARAM = "relay_ref"  # the query parameter of the status callback URL the sender set

STATUSES: dict[str, Status | None] = {
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "receiving": None,
    "received": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "canceled": "failed",
    "undelivered": "undelivered",
}

# Twilio sends only ErrorCode; the names of its common codes (twilio.com/docs/api/errors).
ERROR_NAMES: dict[int, str] = {
    21211: "Invalid 'To' phone number",
    21408: "Permission to send to this region is not enabled",
    21610: "Recipient opted out (STOP)",
    21612: "Cannot route to this number",
    21614: "'To' number is not a valid mobile number",
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Carrier violation",
    30008: "Unknown error",
    30009: "Missing segment",
    30010: "Message price exceeds max price",
    30034: "Message from an unregistered number",
    63016: "WhatsApp: outside the allowed window (template required)",
}


def error_of(code: str | None) -> ReceiptError | None:
    """The error named by an ErrorCode field (None when there is none)."""
    if not code or code.strip() in ("", "0"):
        return None
    value = code_of(code)
    name = ERROR_NAMES.get(value) if isinstance(value, int) else None
    return ReceiptError(value, name or f"Twilio error {value}")


def normalize(request: RawRequest, limit: int = DEFAULT_MAX_RECEIPTS) -> list[Receipt]:
    """The one receipt of a status callback."""
    fields = dict(request.query)
    fields.update(request.form())
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    status = fields.get("MessageStatus") or fields.get("SmsStatus")
    if not sid:
        raise Unreadable("twilio: no MessageSid (is this a status callback?)")
    if not status:
        raise Unreadable("twilio: no MessageStatus")
    provider_status = status.strip().lower()
    return [
        Receipt(
            kind=KIND,
            provider_message_id=sid.strip()[:200],
            status=STATUSES.get(provider_status),
            provider_status=provider_status[:100],
            occurred_ms=times.compact(fields.get("RawDlrDoneDate")),
            recipient=normalize_recipient(fields.get("To")),
            error=error_of(fields.get("ErrorCode")),
            reference=request.query_value(REFERENCE_PARAM),
        )
    ]
