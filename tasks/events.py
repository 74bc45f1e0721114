"""The validated delivery event: what the translators work from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["sent", "delivered", "read", "failed", "undelivered"]
STATUSES: tuple[Status, ...] = ("sent", "delivered", "read", "failed", "undelivered")
FAILURE_STATUSES: frozenset[str] = frozenset({"failed", "undelivered"})


@dataclass(frozen=True, slots=True)
class EventError:
    """Why a message failed, as the producer reported it."""

    code: int | str
    name: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A delivery-status change that passed the schema; times are normalised to epoch ms."""

    event_id: str
    target: str
    status: Status
    message_ids: tuple[str, ...]
    channel: str
    recipient: str
    occurred_ms: int
    conversation_id: str | None = None
    error: EventError | None = None
