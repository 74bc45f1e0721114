"""A receipt and its correlation made into the relay's canonical event (the producers'
contract), so that it is delivered like any pushed event."""

from __future__ import annotations

import hashlib
from typing import Any

from tasks.events import FAILURE_STATUSES
from tasks.upstream.correlation import Correlation
from tasks.upstream.receipts import Receipt, ReceiptError

# A failure the provider gave no reason for still needs one in the contract.
NO_REASON = ReceiptError(0, "No reason given", "the provider reported no error code")


def event_id(source: str, receipt: Receipt) -> str:
    """The same for every copy of one callback (source, message, status, error code), so a
    repeated callback is a duplicate; different for every other status change."""
    code = receipt.error.code if receipt.error and receipt.status in FAILURE_STATUSES else ""
    key = "\x1f".join((source, receipt.provider_message_id, str(receipt.status), str(code)))
    return "rcpt-" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:40]


def make_event(
    source: str, receipt: Receipt, correlation: Correlation, received_ms: int
) -> dict[str, Any]:
    """The canonical event for a receipt with a canonical status (the caller ignores the rest).

    The recipient is the receipt's, else the record's; the time is the provider's, else when
    the relay received the callback; an error goes with failures only."""
    event: dict[str, Any] = {
        "event_id": event_id(source, receipt),
        "target": correlation.target,
        "status": receipt.status,
        "message_ids": list(correlation.message_ids),
        "channel": correlation.channel,
        "recipient": receipt.recipient or correlation.recipient,
        "occurred_at": receipt.occurred_ms or received_ms,
    }
    if correlation.conversation_id:
        event["conversation_id"] = correlation.conversation_id
    if receipt.status in FAILURE_STATUSES:
        error = receipt.error or NO_REASON
        event["error"] = {"code": error.code, "name": error.name}
        if error.message:
            event["error"]["message"] = error.message
    return event
