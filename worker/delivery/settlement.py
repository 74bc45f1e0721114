"""What one delivery came to: the per-request attempts, and the envelope's settlement."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from tasks.classify import Delivered, HttpResult, Outcome, RetryLater
from tasks.outbound import OutboundRequest
from worker.observe.logs import one_line
from worker.observe.masking import mask_text

State = Literal["done", "retry", "dead"]
STATES: tuple[State, ...] = ("done", "retry", "dead")


@dataclass(frozen=True, slots=True)
class Settlement:
    """What became of one envelope: `done` (delivered or skipped), parked `retry`, or `dead`."""

    state: State
    summary: str
    due: float | None = None


def worst(settled: list[Settlement]) -> State:
    """The worst state among `settled`: a dead letter over a retry over done."""
    return next((s for s in reversed(STATES) if any(p.state == s for p in settled)), "done")


def summarize(
    settled: list[Settlement], detail: bool = True, keys: list[str] | None = None
) -> Settlement:
    """A bundle's settlement: its worst state (a dead letter over a retry over done), the
    soonest retry, and how many events ended which way, then (with `detail`) every event's
    summary after its key (its event id; else its position) with phone numbers and addresses
    masked (what the log shows; building it for 200 events costs a little, so a lane asks for
    it only while Flower watches)."""
    if len(settled) == 1:
        summary = mask_text(one_line(settled[0].summary))
    else:
        states = Counter(s.state for s in settled)
        counts = ", ".join(f"{states[state]} {state}" for state in STATES if states[state])
        summary = f"{len(settled)} events: {counts}"
        if detail:
            named = keys or [f"[{i}]" for i in range(len(settled))]
            joined = "; ".join(
                f"{key}: {s.summary}" for key, s in zip(named, settled, strict=False)
            )
            summary = mask_text(one_line(f"{summary}; {joined}"))
    state = worst(settled)
    due = [s.due or 0.0 for s in settled if s.state == "retry"]
    return Settlement(state, summary, min(due) if state == "retry" else None)


def merge(parts: list[Settlement]) -> Settlement:
    """The settlement of an event settled in parts: the worst state, every summary, the
    soonest retry."""
    dues = [p.due or 0.0 for p in parts if p.state == "retry"]
    state = worst(parts)
    due = min(dues) if state == "retry" and dues else None
    return Settlement(state, "; ".join(p.summary for p in parts), due)


@dataclass(slots=True)
class Attempt:
    """One request's part in an event's delivery: what was sent, what came back, what it means."""

    request: OutboundRequest
    outcome: Outcome
    result: HttpResult


@dataclass
class Tally:
    """Message ids of one attempt, sorted by what happened to them."""

    attempts: list[Attempt] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    retry_after: float | None = None
    last_retry: Attempt | None = None
    rejected: dict[str, Attempt] = field(default_factory=dict)

    def add(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        ids = list(attempt.request.message_ids)
        if isinstance(attempt.outcome, Delivered):
            self.delivered += ids
        elif isinstance(attempt.outcome, RetryLater):
            self.retry += ids
            self.last_retry = attempt
            if attempt.outcome.after is not None:
                self.retry_after = max(self.retry_after or 0.0, attempt.outcome.after)
        else:
            self.rejected.update(dict.fromkeys(ids, attempt))
