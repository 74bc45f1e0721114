"""A delivery's outcomes as Flower shows them: one task per way its events ended.

A bundle whose events ended differently (3 delivered, 3 parked, 1 dead letter) is not one red
FAILURE row: it is told as a task per outcome (SUCCESS, PARKED, FAILURE), each listing only its
own events in its arguments and, in its result, each event's id next to what became of it. So
searching Flower for an event id lands on the task whose state is that event's, and reads its
outcome there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.observe.labels import bundle_label, event_key, task_name
from worker.observe.shown import shown

SUMMARY_LIMIT = 300  # characters of one event's outcome shown (a target's answer can be long)
ORDER = ("dead", "retry", "done")
"""Which outcome the bundle's own task keeps (its worst); the others are told as new tasks."""


@dataclass(frozen=True, slots=True)
class EventEnd:
    """What became of one event: its state (done, retry, dead), summary and retry time."""

    event: Any
    attempt: int
    state: str
    summary: str
    due: float | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """The events of a delivery that ended one way, as one Flower task."""

    state: str
    name: str
    label: str
    outcomes: str
    due: float | None


def outcome_text(ends: list[EventEnd]) -> str:
    """`EVENT_ID: outcome; EVENT_ID: outcome`, masked, one line, no markup."""
    return "; ".join(f"{event_key(e.event)}: {shown(e.summary[:SUMMARY_LIMIT])}" for e in ends)


def groups(ends: list[EventEnd]) -> list[Group]:
    """The delivery's events by outcome, the worst first."""
    found = []
    for state in ORDER:
        members = [e for e in ends if e.state == state]
        if not members:
            continue
        dues = [e.due for e in members if e.due]
        found.append(
            Group(
                state,
                task_name(len(members)),
                bundle_label([(e.event, e.attempt) for e in members]),
                outcome_text(members),
                min(dues) if dues else None,
            )
        )
    return found
