"""Providers' ways of writing a time, read as epoch milliseconds (None when absent or odd).

A time the relay cannot read is not a reason to lose the receipt: the caller falls back to the
time of receipt.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MIN_MS = 946_684_800_000  # 2000-01-01: anything earlier is a unit mistake
_MAX_MS = 7_258_118_400_000  # 2200-01-01
_COMPACT = re.compile(r"^\d{10}(\d{2})?$")


def _bounded(ms: float) -> int | None:
    return int(ms) if _MIN_MS <= ms <= _MAX_MS else None


def epoch_seconds(value: object) -> int | None:
    """'1750857384' or 1750857384 (seconds) as epoch ms."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return None
    return _bounded(int(text) * 1000)


def iso(value: object) -> int | None:
    """ISO-8601 with an offset ('2025-05-01T14:00:00.000Z', '...+0000') as epoch ms; a time
    without an offset is taken as UTC."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return _bounded(parsed.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        return None


def compact(value: object) -> int | None:
    """A carrier's 'YYMMDDhhmm' or 'YYMMDDhhmmss' (no zone given: taken as UTC) as epoch ms."""
    if not isinstance(value, str) or not _COMPACT.match(value.strip()):
        return None
    text = value.strip()
    try:
        parsed = datetime.strptime(text, "%y%m%d%H%M%S" if len(text) == 12 else "%y%m%d%H%M")
    except ValueError:
        return None
    return _bounded(parsed.replace(tzinfo=UTC).timestamp() * 1000)
