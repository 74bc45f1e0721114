"""Producers' side in Python: push events, or `relay push`'s JSON lines, onto the inbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from worker.intake.inbox import Inbox
from worker.intake.parsing import parse_text, store_invalid
from worker.settings import get_settings
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetterStore


@dataclass
class PushReport:
    """How a push went: queued events and the problems of the lines that were not."""

    queued: int = 0
    problems: list[str] = field(default_factory=list)


def push_events(events: Iterable[Any]) -> int:
    """Push raw events (decoded JSON, exactly as received) onto the inbox; return how many."""
    return Inbox().push(json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events)


def push_lines(
    lines: Iterable[str], progress: Callable[[int], None] = lambda n: None
) -> PushReport:
    """Queue each JSON line; store the rest as `invalid` dead letters; report both."""
    report = PushReport()
    report.queued = Inbox().push(_readable(lines, report, progress))
    return report


def _readable(
    lines: Iterable[str], report: PushReport, progress: Callable[[int], None]
) -> Iterator[str]:
    """The lines that hold events, as written; the others are dead-lettered on the way."""
    limit = get_settings().max_event_bytes
    store, counters = DeadLetterStore(), Counters()
    for number, line in enumerate(lines, start=1):
        progress(len(line))
        if not line.strip():
            continue
        problem, kept = parse_text(line, limit, f"line {number}")
        if problem is not None:
            report.problems.append(problem)
            store_invalid(problem, kept, store, counters)
            continue
        yield line.strip()  # pushed as written: it is JSON, no need to encode it again
