"""A delivery receipt as a provider reported it, normalized, and the error of one that is not
readable.

A `Receipt` is what every normalizer makes of a callback, whatever the provider: its message id,
its status in the relay's terms (None when the provider's status has no canonical meaning), when
it happened, to whom, why it failed, and the reference the sender asked the provider to echo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tasks.events import STATUSES, EventError, Status

DEFAULT_MAX_RECEIPTS = 1000
"""Receipts one callback may carry unless its source says otherwise (`max_receipts`)."""


class Unreadable(ValueError):
    """The callback cannot be read as receipts; the message says what is wrong with it."""


class TooManyReceipts(ValueError):
    """The callback carries more receipts than its source takes in one request: refused whole
    (413), before a single receipt is made, so nothing of it is stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the callback carries more than {limit} receipts (max_receipts)")


def at_most(items: list[Any], limit: int) -> list[Any]:
    """`items`, or `TooManyReceipts` when there are more than `limit`."""
    if len(items) > limit:
        raise TooManyReceipts(limit)
    return items


ReceiptError = EventError
"""Why a message failed, in the provider's terms: the event contract's {code, name, message?}."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """One status of one message, as a provider reported it, normalized."""

    kind: str
    provider_message_id: str
    status: Status | None
    provider_status: str
    occurred_ms: int | None = None
    recipient: str | None = None
    error: ReceiptError | None = None
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the waiting room and dead letters keep receipts this way)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Receipt:
        """The receipt `to_dict` made; `Unreadable` for anything else."""
        try:
            fields = dict(data)
            error = fields.pop("error", None)
            status = fields.get("status")
            if status is not None and status not in STATUSES:
                raise Unreadable(f"not a canonical status: {status!r}")
            fields["error"] = ReceiptError(**error) if isinstance(error, dict) else None
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            raise Unreadable(f"not a stored receipt: {exc}") from None


def normalize_recipient(value: object) -> str | None:
    """A recipient as the relay passes it on: 'whatsapp:' dropped, bare digits given a '+'."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :].strip()
    if text.isascii() and text.isdigit():
        text = "+" + text
    return text[:240] or None


def text_field(data: Any, name: str, where: str, required: bool = True) -> str | None:
    """A string (or number) field of a JSON object, as text; `Unreadable` when a required
    one is missing or a field has the wrong type."""
    value = data.get(name) if isinstance(data, dict) else None
    if value is None or value == "":
        if required:
            raise Unreadable(f"{where}: '{name}' is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Unreadable(f"{where}: '{name}' must be a string, got {type(value).__name__}")
    return str(value)


def code_of(value: str | int) -> int | str:
    """An error code as an integer when it is one ("30003" -> 30003), else the text."""
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) < 18:
        return int(text)
    return text[:100]
