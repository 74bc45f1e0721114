"""Reading producers' JSON lines: good events are queued, bad lines become dead letters."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from worker.counters import Counters
from worker.deadletters import DeadLetter, DeadLetterStore
from worker.publish import publish_events
from worker.settings import get_settings

BATCH = 1000  # events per publishing round: bounded memory, one broker connection per batch
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
    limit = get_settings().max_event_bytes
    store = DeadLetterStore()
    counters = Counters()
    report = PushReport()
    batch: list[Any] = []
    for number, line in enumerate(lines, start=1):
        progress(len(line))
        if not line.strip():
            continue
        problem, event = _parse(line, number, limit)
        if problem is not None:
            report.problems.append(problem)
            store.add(DeadLetter(reason="invalid", error=problem, event=event))
            counters.incr(None, "dead:invalid")
            continue
        batch.append(event)
        if len(batch) >= BATCH:
            report.queued += publish_events(batch)
            batch = []
    report.queued += publish_events(batch)
    return report


def _parse(line: str, number: int, limit: int) -> tuple[str | None, Any]:
    size = len(line.encode("utf-8", "replace"))
    if size > limit:
        kept = line[:KEEP_OF_OVERSIZED] + f"… [{size - KEEP_OF_OVERSIZED} more bytes not kept]"
        return (
            f"line {number} is {size} bytes, over the {limit}-byte limit "
            "(RELAY_MAX_EVENT_BYTES); not queued"
        ), kept
    try:
        return None, json.loads(line)
    except ValueError as exc:
        return f"line {number} is not JSON: {exc}", line.rstrip("\n")
    except RecursionError:
        return f"line {number} is nested too deeply to be an event", line[:KEEP_OF_OVERSIZED]
