"""Sample configuration and events for `relay dev` (and a template for users' own)."""

from __future__ import annotations

import time
from typing import Any

DEV_CONFIG = """\
[retry]
base_delay = 0.5
max_delay = 5.0
max_attempts = 5
max_age = 120.0

[targets.sf-sandbox]
kind = "salesforce"
base_url = "{sandbox}/salesforce"
org_id = "00D5g000004xyzA"
authorization_context = "Partner1_ChannelDefinition1"
auth = {{ type = "bearer", token = "${{RELAY_DEV_SF_TOKEN}}" }}

[targets.medallia-sandbox]
kind = "medallia"
base_url = "{sandbox}/medallia"
channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"
auth = {{ type = "bearer", token = "${{RELAY_DEV_MEDALLIA_TOKEN}}" }}
"""


FAILURE = {"code": 207, "name": "Unavailable", "message": "Unable to deliver the message"}
SF_CHANNEL = "72a6a4ec-acbc-44f6-b2b9-e444248ca843"
SF_CONVERSATION = "c0a8e9f2-0000-4000-8000-00000000c0de"

# The events besides one per target and status: (event_id, target, status, message ids,
# channel). A sandbox fault answers "msg-retry" twice with 503 and "msg-reject" with 400.
_SHOWCASES: tuple[tuple[str, str, str, list[str], str], ...] = (
    ("dev-retry", "medallia-sandbox", "delivered", ["msg-retry-1"], "page-1"),
    ("dev-reject", "sf-sandbox", "failed", ["msg-reject-1"], "72a6a4ec"),
    ("dev-invalid", "sf-sandbox", "lost", [], "x"),  # breaks the contract: a dead letter
    ("dev-unroutable", "nowhere", "sent", ["m"], "x"),  # no such target: a dead letter
)


def sample_events() -> list[Any]:
    """Both targets, every status, one retried and one rejected failure, and two bad events."""
    now = int(time.time())
    events: list[Any] = []
    for status in ("sent", "delivered", "read", "failed", "undelivered"):
        mids = [f"sf-msg-{status}-1", f"sf-msg-{status}-2"]
        sf = _event(f"dev-sf-{status}", "sf-sandbox", status, mids, SF_CHANNEL, now)
        events.append({**sf, "conversation_id": SF_CONVERSATION})
        mids = [f"md-msg-{status}-1"]
        events.append(_event(f"dev-md-{status}", "medallia-sandbox", status, mids, "page-1", now))
    events += [_event(*showcase, now) for showcase in _SHOWCASES]
    return events


def _event(
    event_id: str, target: str, status: str, mids: list[str], channel: str, now: int
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "target": target,
        "status": status,
        "message_ids": mids,
        "channel": channel,
        "recipient": "+4915112345678",
        "occurred_at": now,
    }
    if status in ("failed", "undelivered"):
        event["error"] = FAILURE
    return event
