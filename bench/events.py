"""Benchmark events in the relay's contract: mixed targets and statuses, realistic sizes.

The mix is a guess at a busy messaging platform: mostly one message id per status change,
acknowledgements (delivered/read) far more common than failures, and a share of statuses the
target has no use for (Salesforce `sent`, Medallia `read`), which the relay skips and counts.
Every event is valid, so what is measured is delivery, not dead-lettering.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

STATUSES = ("delivered", "read", "sent", "failed", "undelivered")
STATUS_WEIGHTS = (40, 25, 15, 12, 8)
POSTABLE = {"sf": ("delivered", "read", "failed", "undelivered"), "md": STATUSES[:1] + STATUSES[2:]}
ERRORS = (
    (207, "Unavailable", "Unable to deliver the message: handset unreachable for 48 hours"),
    ("30008", "UnknownError", "Carrier reported an unknown error"),
    (470, "ReEngagement", "Message failed to send because more than 24 hours have passed"),
    (131026, "Undeliverable", None),
)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _text(rng: random.Random, size: int) -> str:
    return "".join(rng.choices(_ALNUM, k=size))


def _message_ids(rng: random.Random, target: str, tag: str) -> list[str]:
    roll = rng.random()
    count = 1 if roll < 0.85 else rng.randint(2, 3) if roll < 0.97 else rng.randint(4, 10)
    if tag:  # latency runs: the push time travels in every id, so it appears in every body
        return [f"{tag}-{k}" for k in range(count)]
    if target == "sf":  # Salesforce conversation entry ids look like record ids
        return ["0Mw5g" + _text(rng, 13) for _ in range(count)]
    return ["m_" + _text(rng, 40) for _ in range(count)]  # OTT-style Medallia mids


def make_event(
    rng: random.Random, event_id: str, postable_only: bool = False, tag: str = ""
) -> dict[str, Any]:
    """One valid event; `tag` (e.g. "lat-<ns>") replaces the message ids in latency runs."""
    target = rng.choice(("sf", "md"))
    if postable_only:
        status = rng.choice(POSTABLE[target])
    else:
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
    event: dict[str, Any] = {
        "event_id": event_id,
        "target": target,
        "status": status,
        "message_ids": _message_ids(rng, target, tag),
        "channel": str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if target == "sf"
        else str(rng.randint(10**14, 10**15)),
        "recipient": f"+49151{rng.randint(10**7, 10**8 - 1)}",
        "occurred_at": (
            f"2026-11-23T10:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            f".{rng.randint(0, 999):03d}Z"
            if rng.random() < 0.7
            else 1795428000000 + rng.randint(0, 10**7)
        ),
    }
    if target == "sf" and status in ("delivered", "read"):
        event["conversation_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if status in ("failed", "undelivered"):
        code, name, message = rng.choice(ERRORS)
        event["error"] = {"code": code, "name": name}
        if message:
            event["error"]["message"] = message
    return event


def make_events(count: int, run_tag: str, seed: int = 5, postable_only: bool = False) -> list[Any]:
    """`count` events with ids unique to `run_tag` (the relay would drop a repeat as duplicate)."""
    rng = random.Random(seed)
    return [make_event(rng, f"{run_tag}-{i}", postable_only) for i in range(count)]
