"""The producers' contract: a marshmallow schema that turns raw JSON into an `Event`.

Every rule of the event contract (docs/concepts/event.md) lives here, so that a producer who breaks
the contract gets one message per field saying what is wrong.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from tasks.events import FAILURE_STATUSES, MAX_AHEAD_MS, STATUSES, Event, EventError, too_far_ahead

# Epoch values at or above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 100_000_000_000
# Nothing happened before 2000 or after 2200 in this business; anything else is a unit mistake.
_MIN_MS = 946_684_800_000
_MAX_MS = 7_258_118_400_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_OUT_OF_RANGE = "Epoch time out of range (expected a time between 2000 and 2200 in seconds or ms)."


def _epoch_to_ms(value: int | float) -> int:
    """Epoch seconds or milliseconds as whole milliseconds (rounded down)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("Must be a positive epoch time in seconds or milliseconds.")
    if value < 0:  # compared as it is: an int of 400 digits must not become a float
        raise ValidationError("Must be a positive epoch time in seconds or milliseconds.")
    if value > _MAX_MS:
        raise ValidationError(_OUT_OF_RANGE)
    ms = value if value >= _MS_THRESHOLD else value * 1000
    if isinstance(ms, float):
        # 1700000000.491 * 1000 is 1700000000490.9998 in binary floating point: a thousandth
        # of a millisecond of slack keeps the millisecond that was written.
        ms = math.floor(ms + 1e-3)
    if not _MIN_MS <= ms <= _MAX_MS:
        raise ValidationError(_OUT_OF_RANGE)
    return int(ms)


class _Validated:
    """Runs a field's validators only when it has some: marshmallow builds a validate.And of
    them for every value otherwise, eleven times an event."""

    validators: list[Any]

    def _validate(self, value: Any) -> None:
        for validator in self.validators:
            if validator(value) is False:  # marshmallow's convention: False means invalid
                raise ValidationError("Invalid value.")


class OccurredAt(_Validated, fields.Field[int]):
    """ISO-8601 with a UTC offset, or epoch seconds / milliseconds; loads as epoch ms."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("Must be an ISO-8601 time with offset or an epoch number.")
        if isinstance(value, int | float):
            return _epoch_to_ms(value)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("Must be an ISO-8601 time with offset or an epoch number.")
        text = value.strip()
        if text.isascii() and text.isdigit():
            if len(text) > 15:  # int() of thousands of digits raises; this is past 2200 anyway
                raise ValidationError(_OUT_OF_RANGE)
            return _epoch_to_ms(int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"Not an ISO-8601 time: {text[:40]!r}.") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValidationError("ISO-8601 time needs a UTC offset (e.g. 'Z' or '+02:00').")
        # Exact arithmetic: timestamp() * 1000 loses a millisecond to rounding now and then.
        return _epoch_to_ms((parsed - _EPOCH) // _MS)


class ErrorCode(_Validated, fields.Field[int | str]):
    """An integer or a non-empty string, never a boolean."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("Must be an integer or a string.")
        if isinstance(value, str) and not value.strip():
            raise ValidationError("Must not be empty.")
        if isinstance(value, str) and len(value) > 100:
            raise ValidationError("Longer than maximum length 100.")
        if isinstance(value, str):
            _unicode(value)
        return value


def _unicode(value: str) -> None:
    """Refuse text that is not valid Unicode: JSON's "\\ud800" decodes to a lone surrogate,
    which no UTF-8 body, Redis key or log line can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        problem = "Not valid Unicode text (it holds a lone UTF-16 surrogate)."
        raise ValidationError(problem) from None


class Text(_Validated, fields.String):
    """A string of 1..`max_len` characters of valid Unicode: the checks of validate.Length and
    `_unicode` in one step (one field of every event, so their dispatch was a tenth of a
    worker's CPU)."""

    def __init__(self, max_len: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_len = max_len

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not 1 <= len(text) <= self.max_len:
            raise ValidationError(f"Length must be between 1 and {self.max_len}.")
        _unicode(text)
        return text


class List(_Validated, fields.List[Any]):
    """fields.List without the per-value validate.And."""


class Nested(_Validated, fields.Nested):
    """fields.Nested without the per-value validate.And."""


class ErrorSchema(Schema):
    """The failure reason attached to failed/undelivered events."""

    class Meta:
        unknown = RAISE

    code = ErrorCode(required=True)
    name = Text(200, required=True)
    message = Text(2000, load_default=None)


class EventSchema(Schema):
    """The canonical delivery event; unknown fields are refused."""

    class Meta:
        unknown = RAISE

    event_id = Text(200, required=True)
    target = Text(100, required=True)
    status = Text(200, required=True, validate=validate.OneOf(STATUSES))
    message_ids = List(Text(255), required=True, validate=validate.Length(min=1, max=100))
    channel = Text(255, required=True)
    recipient = Text(240, required=True)
    conversation_id = Text(240, load_default=None)
    occurred_at = OccurredAt(required=True)
    error = Nested(ErrorSchema, load_default=None)

    @validates_schema
    def _error_matches_status(self, data: dict[str, Any], **kwargs: Any) -> None:
        status, error = data.get("status"), data.get("error")
        if status in FAILURE_STATUSES and error is None:
            raise ValidationError(f"Required when status is {status!r}.", "error")
        if status not in FAILURE_STATUSES and status is not None and error is not None:
            raise ValidationError(
                f"Only allowed when status is 'failed' or 'undelivered', not {status!r}.", "error"
            )

    @post_load
    def _make_event(self, data: dict[str, Any], **kwargs: Any) -> Event:
        err = data["error"]
        return Event(
            event_id=data["event_id"],
            target=data["target"],
            status=data["status"],
            message_ids=tuple(data["message_ids"]),
            channel=data["channel"],
            recipient=data["recipient"],
            occurred_ms=data["occurred_at"],
            conversation_id=data["conversation_id"],
            error=EventError(**err) if err is not None else None,
        )


_SCHEMA = EventSchema()
_MAX_PROBLEM_TEXT = 2000


class InvalidEvent(ValueError):
    """The event breaks the producers' contract; `messages` maps field → problems."""

    def __init__(self, messages: dict[str, Any]) -> None:
        self.messages = messages
        text = format_problems(messages)
        if len(text) > _MAX_PROBLEM_TEXT:  # ten thousand unknown fields make no better message
            text = text[:_MAX_PROBLEM_TEXT] + "… (more problems not shown)"
        super().__init__(text)


def format_problems(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow's nested error dict into 'field: problem; field: problem'."""
    if isinstance(messages, dict):
        parts = [
            # marshmallow files whole-object problems under "_schema": name the object instead.
            format_problems(v, prefix if k == "_schema" else f"{prefix}{_field_name(k)}.")
            for k, v in messages.items()
        ]
        return "; ".join(p for p in parts if p)
    if isinstance(messages, list):
        label = prefix.rstrip(".") or "event"
        return "; ".join(
            format_problems(m, prefix) if isinstance(m, dict) else f"{label}: {str(m).rstrip('.')}"
            for m in messages
        )
    return f"{prefix.rstrip('.') or 'event'}: {str(messages).rstrip('.')}"


def _field_name(name: Any) -> str:
    """A field name fit to print: a producer's unknown key may hold newlines, surrogates, or
    be thousands of characters long."""
    text = str(name)
    if text.isprintable() and len(text) <= 60:
        return text
    return ascii(text)[1:-1][:60]


_AHEAD = f"Dated more than {MAX_AHEAD_MS // 60_000} minutes in the future."


def load_event(raw: Any, now: float | None = None) -> Event:
    """Validate one raw event (already JSON-decoded); raise `InvalidEvent` on any problem.

    `now` (epoch seconds; the real clock when None) is the one input besides the event: a
    status dated more than MAX_AHEAD_MS after it is invalid."""
    if not isinstance(raw, dict):
        kind = "null" if raw is None else type(raw).__name__
        raise InvalidEvent({"_schema": [f"An event must be a JSON object, not {kind}."]})
    now_ms = int((time.time() if now is None else now) * 1000)
    try:
        event: Event = _SCHEMA.load(raw)
    except ValidationError as exc:
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        loaded = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        occurred = loaded.get("occurred_at")
        if isinstance(occurred, int) and too_far_ahead(occurred, now_ms):
            messages = {**messages, "occurred_at": [_AHEAD]}
        raise InvalidEvent(messages) from None
    if too_far_ahead(event.occurred_ms, now_ms):
        raise InvalidEvent({"occurred_at": [_AHEAD]})
    return event


def load_events(raws: list[Any], now: float | None = None) -> list[Event | InvalidEvent]:
    """Each raw event validated: its `Event`, or the `InvalidEvent` saying why not. A bundle
    of objects goes through the schema in one pass (`many=True`: the schema's per-call work
    once, not per event); when any of them is invalid, each is loaded alone, so every event
    gets exactly the answer `load_event` gives it."""
    if raws and all(isinstance(raw, dict) for raw in raws):
        now_ms = int((time.time() if now is None else now) * 1000)
        try:
            events: list[Event] = _SCHEMA.load(raws, many=True)
        except Exception:  # invalid (or a bug): each alone says which and why
            pass
        else:
            if not any(too_far_ahead(event.occurred_ms, now_ms) for event in events):
                return list(events)
    return [_load_or_problem(raw, now) for raw in raws]


def _load_or_problem(raw: Any, now: float | None) -> Event | InvalidEvent:
    try:
        return load_event(raw, now)
    except InvalidEvent as exc:
        return exc
