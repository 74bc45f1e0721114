"""Writing what the CLI shows: text that any terminal can take, with personal data masked.

Dead letters hold what producers sent, which may include newlines, control characters, text
that is not valid Unicode, and recipients' phone numbers: the human-readable views escape the
first and mask the last; `--json` keeps the record whole (escaped where it must be).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from worker.observe.logs import one_line
from worker.observe.masking import mask_fields, mask_text


def printable(value: object, width: int | None = None) -> str:
    """`value` as one line of text: control characters and lone surrogates escaped."""
    text = one_line("-" if value is None else str(value))
    return text if width is None else text[:width]


def cut(value: object, width: int) -> str:
    """`value` printable in `width` characters, a cut one ending in '~' (so nobody takes it
    for a whole id; `--wide` prints it whole)."""
    text = printable(value)
    return text if len(text) <= width else text[: width - 1] + "~"


def masked(value: object, width: int | None = None) -> str:
    """Free text (an error, a raw line) as one printable line with phone numbers and
    addresses masked."""
    return mask_text(printable(value, width))


def json_text(value: Any, indent: int | None = 2) -> str:
    """JSON for output: UTF-8 where it can be, ASCII-escaped where the text is not valid."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=indent)
    return text


def masked_event(event: Any) -> str:
    """An event for human eyes: recipients masked, other text masked where it looks like a
    phone number or an address, numbers (times, codes) as they are; a raw line as masked
    text."""
    if not isinstance(event, dict):
        return masked(event)
    return json_text(mask_fields(event), indent=None)


def stamp(value: float | str | None, ms: bool = False) -> str:
    """A time, whole, in UTC: 2026-12-03T01:44:44Z, or with milliseconds (…44.250Z); an
    ISO-8601 text (a dead letter's failed_at) is read first. '-' when there is none."""
    if value is None or value == "":
        return "-"
    try:
        moment = (
            datetime.fromisoformat(value)
            if isinstance(value, str)
            else datetime.fromtimestamp(float(value), UTC)
        )
    except (ValueError, OverflowError, OSError):
        return printable(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds" if ms else "seconds")
    return text.replace("+00:00", "Z")
