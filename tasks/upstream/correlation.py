"""Which target message a provider's message is: a correlation record or an echoed reference.

A record is registered by the sending side once it knows the provider's message id; a
reference is the same fields as compact JSON the provider echoes back with every receipt
(its wire form, signature and who may use it: `tasks.upstream.references`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

_LIMITS = {"target": 100, "channel": 255, "recipient": 240, "conversation_id": 240}
MAX_IDS = 100
"""Message ids one record or reference may name (the event contract's own bound)."""


class BadCorrelation(ValueError):
    """A record or reference that cannot say where a receipt goes; the message says why."""


class TooManyIds(BadCorrelation):
    """A record or reference naming more than MAX_IDS message ids: for a reference, the whole
    callback is refused (one receipt must not fan out into thousands of target requests)."""


@dataclass(frozen=True, slots=True)
class Correlation:
    """Where the receipts of one provider message go (target None: the source's default)."""

    message_ids: tuple[str, ...]
    channel: str
    target: str | None = None
    recipient: str | None = None
    conversation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["message_ids"] = list(self.message_ids)
        return {k: v for k, v in data.items() if v is not None}

    def with_target(self, default: str | None) -> Correlation:
        """This correlation, its target filled from the source's default when it has none."""
        if self.target or not default:
            return self
        return Correlation(
            self.message_ids, self.channel, default, self.recipient, self.conversation_id
        )


def _text(data: dict[str, Any], name: str, required: bool) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadCorrelation(f"'{name}' must be a non-empty string")
    if len(value) > _LIMITS[name]:
        raise BadCorrelation(f"'{name}' is longer than {_LIMITS[name]} characters")
    return value


def correlation_of(data: Any) -> Correlation:
    """A correlation from a decoded record or reference; `BadCorrelation` saying what is wrong."""
    if not isinstance(data, dict):
        raise BadCorrelation("must be a JSON object")
    ids = data.get("message_ids")
    if isinstance(ids, str):
        ids = [ids]
    if isinstance(ids, list) and len(ids) > MAX_IDS:
        raise TooManyIds(f"'message_ids' must be a list of 1 to {MAX_IDS} ids, not {len(ids)}")
    if not isinstance(ids, list) or not ids:
        raise BadCorrelation(f"'message_ids' must be a list of 1 to {MAX_IDS} ids")
    if not all(isinstance(i, str) and i.strip() and len(i) <= 255 for i in ids):
        raise BadCorrelation("'message_ids' must hold non-empty strings of at most 255 characters")
    return Correlation(
        message_ids=tuple(ids),
        channel=_text(data, "channel", True) or "",
        target=_text(data, "target", False),
        recipient=_text(data, "recipient", False),
        conversation_id=_text(data, "conversation_id", False),
    )


@dataclass(frozen=True, slots=True)
class Record:
    """A correlation record: the provider message it is about, and where its receipts go."""

    source: str
    provider_message_id: str
    correlation: Correlation

    def to_json(self) -> str:
        return json.dumps(self.correlation.to_dict(), separators=(",", ":"))


def record_of(data: Any) -> Record:
    """A record as `relay correlate` and POST /v1/correlations take it."""
    if not isinstance(data, dict):
        raise BadCorrelation("a correlation record must be a JSON object")
    known = {"source", "provider_message_id", *_LIMITS, "message_ids"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadCorrelation(f"unknown field(s): {', '.join(unknown)}")
    for name in ("source", "provider_message_id"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise BadCorrelation(f"'{name}' must be a non-empty string of at most 200 characters")
    body = {k: v for k, v in data.items() if k not in ("source", "provider_message_id")}
    return Record(data["source"], data["provider_message_id"], correlation_of(body))
