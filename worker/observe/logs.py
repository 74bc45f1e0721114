"""Structured logs: one line per attempt, as text or JSON (RELAY_LOG_FORMAT=json).

No secrets and no recipients reach these lines: only ids, target names, statuses and timings.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from tasks.classify import HttpResult

attempt_log = logging.getLogger("relay.attempt")
_FIELDS = "relay_fields"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, _FIELDS, {}),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def one_line(text: str) -> str:
    """`text` with newlines and other control characters escaped: what a producer wrote (an
    event_id with a newline in it) must not start a forged line in a text log."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...`, one line per record (but a traceback)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        line = super().formatMessage(record)
        fields = getattr(record, _FIELDS, {})
        if fields:
            line += " " + " ".join(f"{k}={one_line(str(v))}" for k, v in fields.items())
        return line


def configure(fmt: str) -> None:
    """Send the relay's own loggers to stderr in `fmt` ("json" or "text")."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("[%(asctime)s: %(levelname)s/%(name)s] %(message)s"))
    root = logging.getLogger("relay")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def attempt(
    event_id: str,
    target: str,
    number: int,
    endpoint: str,
    result: HttpResult,
    outcome: str,
    next_retry: float | None,
) -> None:
    """Log one request attempt with everything an operator asks about it."""
    fields = {
        "event_id": event_id,
        "target": target,
        "attempt": number,
        "endpoint": endpoint,
        "http_status": result.status,
        "error": result.network_error,
        "duration_ms": round(result.duration * 1000, 1),
        "outcome": outcome,
        "next_retry": datetime.fromtimestamp(next_retry, UTC).isoformat() if next_retry else None,
    }
    attempt_log.info("attempt", extra={_FIELDS: fields})
