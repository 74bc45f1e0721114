"""The validated delivery event: what the translators work from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["sent", "delivered", "read", "failed", "undelivered"]
STATUSES: tuple[Status, ...] = ("sent", "delivered", "read", "failed", "undelivered")
FAILURE_STATUSES: frozenset[str] = frozenset({"failed", "undelivered"})
MAX_AHEAD_MS = 5 * 60 * 1000
"""How far ahead of now a status may be dated (clocks drift); past it the status is invalid,
for every producer: a time in the future would make every later genuine status look old."""


def too_far_ahead(occurred_ms: int, now_ms: int) -> bool:
    """Whether a status dated `occurred_ms` is more than MAX_AHEAD_MS ahead of `now_ms`."""
    return occurred_ms > now_ms + MAX_AHEAD_MS


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
