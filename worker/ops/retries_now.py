"""`relay retries now`: parked events made due at once, when their target is back after an
outage (with `max_delay` at 30 minutes they would otherwise wait up to that long).

Only due times move, in one script call on Redis (`RetrySchedule.bring_forward`); the pumps
send them as any due retry, so nothing is sent by this process and nothing twice: a pump's
claim dates a member one lease ahead, and members due that soon are left where they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tasks.envelope import Envelope
from worker.ops.cli.output import stamp
from worker.settings import get_settings
from worker.stores.breaker import _CACHE_SECONDS as BREAKER_VIEW_AGE
from worker.stores.breaker import CircuitBreaker
from worker.stores.retries import RetrySchedule

CLOCK_SKEW = 5.0
"""Seconds this host's clock may differ from a worker's (their pumps date claims by theirs)."""
CHUNK = 500  # members moved per script call


@dataclass
class NowReport:
    """What `send_now` did."""

    chosen: list[Envelope] = field(default_factory=list)
    moved: int = 0
    due: int = 0
    """Chosen ones that were due already."""
    soon: int = 0
    """Chosen ones left as they were, due within the lease anyway."""
    window: float = 0.0
    closed: dict[str, float] = field(default_factory=dict)
    """Targets whose open circuit was closed, with until when it was open."""

    def lines(self) -> list[str]:
        text = [
            f"circuit of {t} closed (it was open until {stamp(u)})" for t, u in self.closed.items()
        ]
        text.append(
            f"{self.moved + self.due} parked retry(ies) due now ({self.moved} brought forward); "
            "workers send them within seconds"
        )
        if self.soon:
            text.append(
                f"{self.soon} due within {self.window:g}s left as they are (a worker may be "
                "taking them this instant)"
            )
        return text


def send_now(select: Callable[[Envelope], bool], now: float | None = None) -> NowReport:
    """Make every parked envelope `select` picks due at `now`, and close its target's circuit
    when it is open (the pump would hold them back until the circuit's cool-down ends)."""
    now = time.time() if now is None else now
    schedule = RetrySchedule()
    report = NowReport(window=get_settings().retry_lease + CLOCK_SKEW)
    members: list[str] = []
    for member, envelope, due in schedule.entries():
        if envelope is None or not select(envelope):
            continue
        report.chosen.append(envelope)
        if due <= now:
            report.due += 1
        elif due <= now + report.window:
            report.soon += 1
        else:
            members.append(member)
    report.closed = _close_circuits({_target(e) for e in report.chosen} - {None}, now)
    if report.closed:  # until every worker sees the circuit closed, it would defer them again
        time.sleep(BREAKER_VIEW_AGE + 0.5)
    for start in range(0, len(members), CHUNK):
        chunk = members[start : start + CHUNK]
        report.moved += schedule.bring_forward(chunk, now, now + report.window)
    return report


def _close_circuits(targets: set[str | None], now: float) -> dict[str, float]:
    breaker = CircuitBreaker.from_settings()
    closed: dict[str, float] = {}
    for target in sorted(t for t in targets if t):
        until = breaker.open_until(target, now)
        if until is not None:
            breaker.close(target)
            closed[target] = until
    return closed


def _target(envelope: Envelope) -> str | None:
    event = envelope.event
    target = event.get("target") if isinstance(event, dict) else None
    return target if isinstance(target, str) else None
