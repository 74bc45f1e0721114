"""SMPP delivery receipts forwarded by an SMPP gateway's HTTP DLR callback (Kannel's dlr-url,
Jasmin's DLR callbacks): the receipt text in field `receipt` (query, form body, or a
text/plain body holding only the receipt), the original recipient in `to` when known."""

from __future__ import annotations

import re

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

KIND = "smpp_dlr"
STATUSES: dict[str, Status | None] = {
    "ENROUTE": "sent",
    "ACCEPTD": "sent",
    "DELIVRD": "delivered",
    "EXPIRED": "undelivered",
    "DELETED": "undelivered",
    "UNDELIV": "undelivered",
    "REJECTD": "failed",
    "UNKNOWN": None,
}
STATE_NAMES = {
    "EXPIRED": "Message validity period expired",
    "DELETED": "Message deleted",
    "UNDELIV": "Message undeliverable",
    "REJECTD": "Message rejected",
}
# Field names of SMPP 3.4 Appendix B; "text" comes last and takes the rest of the line.
_FIELD = re.compile(r"(?i)(?:^|\s)(id|sub|dlvrd|submit date|done date|stat|err|text):")


def parse_receipt(text: str) -> dict[str, str]:
    """The fields of a receipt text, field by field, tolerantly (unknown words are skipped)."""
    matches = list(_FIELD.finditer(text))
    fields: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = match.group(1).lower()
        value = text[match.end() : end]
        if name != "text":  # one word each; words between fields are skipped
            value = value.split()[0] if value.split() else ""
        fields.setdefault(name, value)
    return fields


def _fields(request: RawRequest) -> dict[str, str]:
    fields = dict(request.query)
    if request.method == "POST" and request.body:
        if request.content_type == "text/plain":
            fields["receipt"] = request.text()
        else:
            fields.update(request.form())
    return fields


def normalize(request: RawRequest, limit: int = DEFAULT_MAX_RECEIPTS) -> list[Receipt]:
    """The one receipt of a DLR callback."""
    fields = _fields(request)
    text = fields.get("receipt")
    if not text or not text.strip():
        raise Unreadable("smpp_dlr: no 'receipt' field holding the receipt text")
    parsed = parse_receipt(text)
    message_id, state = parsed.get("id", ""), parsed.get("stat", "").upper()
    if not message_id:
        raise Unreadable("smpp_dlr: the receipt has no 'id:'")
    if not state:
        raise Unreadable("smpp_dlr: the receipt has no 'stat:'")
    status = STATUSES.get(state)
    error = None
    if status in ("failed", "undelivered"):
        err = parsed.get("err") or "0"
        error = ReceiptError(code_of(err), STATE_NAMES.get(state, state), f"stat:{state} err:{err}")
    return [
        Receipt(
            kind=KIND,
            provider_message_id=message_id[:200],
            status=status,
            provider_status=state[:100],
            occurred_ms=times.compact(parsed.get("done date")),
            recipient=normalize_recipient(fields.get("to")),
            error=error,
        )
    ]
