"""Records the store tests build: dead letters and parked envelopes."""

from __future__ import annotations

from typing import Any

from tasks.envelope import Envelope
from worker.stores.deadletters import DeadLetter

T = 1_700_000_000.0  # an explicit "now" for the retry schedule
LEASE = 60.0


def letter(n: int, **overrides: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "reason": "rejected",
        "error": "HTTP 400: bad request",
        "event": {"event_id": f"evt-{n}", "target": "sf", "message_ids": [f"m-{n}"]},
        "attempts": 1,
        "event_id": f"evt-{n}",
        "target": "sf",
        "status_code": 400,
    }
    values.update(overrides)
    return DeadLetter(**values)


def envelope(n: int) -> Envelope:
    return Envelope(
        {"event_id": f"evt-{n}", "target": "md", "message_ids": [f"m-{n}"]},
        attempts=1,
        first_seen=T - 100,
    )
