"""Producers' side in Python: push events, or `relay push`'s JSON lines, onto the inbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from worker.cells.inbox import RoutedInbox
from worker.intake.inbox import InboxFull
from worker.intake.parsing import parse_item, store_invalid
from worker.settings import get_settings
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetterStore


@dataclass
class PushReport:
    """How a push went: queued events, the problems of the lines that were not, and whether
    the inbox was full (then the lines after the queued ones were not read)."""

    queued: int = 0
    problems: list[str] = field(default_factory=list)
    full: str | None = None


def push_events(events: Iterable[Any]) -> int:
    """Push raw events (decoded JSON, exactly as received) onto the inbox; return how many.
    Raises `InboxFull` (with how many were queued) when the inbox is at its bound."""
    inbox = RoutedInbox()
    return inbox.push_routed((inbox.cells.of_event(e), _json(e)) for e in events)


def _json(event: Any) -> str:
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, the schema will say what is wrong
        text = json.dumps(event, separators=(",", ":"))
    return text


def push_lines(
    lines: Iterable[bytes], progress: Callable[[int], None] = lambda n: None
) -> PushReport:
    """Queue each JSON line; store the rest as `invalid` dead letters; report both."""
    report = PushReport()
    try:
        report.queued = RoutedInbox().push(_readable(lines, report, progress))
    except InboxFull as exc:
        report.queued, report.full = exc.queued, str(exc)
    return report


def _readable(
    lines: Iterable[bytes], report: PushReport, progress: Callable[[int], None]
) -> Iterator[str]:
    """The lines that hold events, as written; the others are dead-lettered on the way."""
    limit = get_settings().max_event_bytes
    store, counters = DeadLetterStore(), Counters()
    for number, line in enumerate(lines, start=1):
        progress(len(line))
        if not line.strip():
            continue
        problem, kept = parse_item(line.strip(), limit, f"line {number}")
        if problem is not None:
            report.problems.append(problem)
            store_invalid(problem, kept, store, counters)
            continue
        yield line.strip().decode("utf-8")  # pushed as written: it is JSON already
