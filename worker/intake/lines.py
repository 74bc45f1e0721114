"""Reading producers' JSON lines: good events are queued, bad lines become dead letters."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from worker.settings import get_settings
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore

BATCH = 1000  # events per push: bounded memory, one round trip per batch
KEEP_OF_OVERSIZED = 1024  # characters of an oversized line kept so a person can tell what it was


@dataclass
class PushReport:
    """How a push went: queued events and the problems of the lines that were not."""

    queued: int = 0
    problems: list[str] = field(default_factory=list)


def push_lines(
    lines: Iterable[str], progress: Callable[[int], None] = lambda n: None
) -> PushReport:
    """Queue each JSON line; store the rest as `invalid` dead letters; report both."""
    from worker.intake.inbox import Inbox  # it parses with this module's functions

    inbox = Inbox()
    limit = get_settings().max_event_bytes
    store = DeadLetterStore()
    counters = Counters()
    report = PushReport()
    batch: list[str] = []
    for number, line in enumerate(lines, start=1):
        progress(len(line))
        if not line.strip():
            continue
        problem, kept = parse_text(line, limit, f"line {number}")
        if problem is not None:
            report.problems.append(problem)
            store_invalid(problem, kept, store, counters)
            continue
        batch.append(line.strip())  # pushed as written: it is JSON, no need to encode it again
        if len(batch) >= BATCH:
            report.queued += inbox.push(batch)
            batch = []
    report.queued += inbox.push(batch)
    return report


def parse_text(text: str, limit: int, what: str) -> tuple[str | None, Any]:
    """The event in a JSON text, or (why not, what of the text to keep as a dead letter)."""
    size = len(text.encode("utf-8", "replace"))
    if size > limit:
        kept = text[:KEEP_OF_OVERSIZED] + f"… [{size - KEEP_OF_OVERSIZED} more bytes not kept]"
        return (
            f"{what} is {size} bytes, over the {limit}-byte limit "
            "(RELAY_MAX_EVENT_BYTES); not queued"
        ), kept
    try:
        return None, json.loads(text)
    except ValueError as exc:
        return f"{what} is not JSON: {exc}", text.rstrip("\n")
    except RecursionError:
        return f"{what} is nested too deeply to be an event", text[:KEEP_OF_OVERSIZED]


def store_invalid(
    problem: str, kept: Any, store: DeadLetterStore | None = None, counters: Counters | None = None
) -> None:
    """Keep what could not be queued as an `invalid` dead letter, and count it."""
    (store or DeadLetterStore()).add(DeadLetter(reason="invalid", error=problem, event=kept))
    (counters or Counters()).incr(None, "dead:invalid")
