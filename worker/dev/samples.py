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


def sample_events() -> list[Any]:
    """Both targets, every status, one retried and one rejected failure, and two bad events."""
    now = int(time.time())
    failure = {"code": 207, "name": "Unavailable", "message": "Unable to deliver the message"}
    common = {"recipient": "+4915112345678", "occurred_at": now}
    events: list[Any] = []
    for status in ("sent", "delivered", "read", "failed", "undelivered"):
        extra = {"error": failure} if status in ("failed", "undelivered") else {}
        events.append(
            {
                "event_id": f"dev-sf-{status}",
                "target": "sf-sandbox",
                "status": status,
                "message_ids": [f"sf-msg-{status}-1", f"sf-msg-{status}-2"],
                "channel": "72a6a4ec-acbc-44f6-b2b9-e444248ca843",
                "conversation_id": "c0a8e9f2-0000-4000-8000-00000000c0de",
                **common,
                **extra,
            }
        )
        events.append(
            {
                "event_id": f"dev-md-{status}",
                "target": "medallia-sandbox",
                "status": status,
                "message_ids": [f"md-msg-{status}-1"],
                "channel": "page-1",
                **common,
                **extra,
            }
        )
    events.append(
        {
            "event_id": "dev-retry",
            "target": "medallia-sandbox",
            "status": "delivered",
            "message_ids": ["msg-retry-1"],
            "channel": "page-1",
            **common,
        }
    )
    events.append(
        {
            "event_id": "dev-reject",
            "target": "sf-sandbox",
            "status": "failed",
            "message_ids": ["msg-reject-1"],
            "channel": "72a6a4ec",
            "error": failure,
            **common,
        }
    )
    events.append(
        {
            "event_id": "dev-invalid",
            "target": "sf-sandbox",
            "status": "lost",
            "message_ids": [],
            "channel": "x",
            **common,
        }
    )
    events.append(
        {
            "event_id": "dev-unroutable",
            "target": "nowhere",
            "status": "sent",
            "message_ids": ["m"],
            "channel": "x",
            **common,
        }
    )
    return events
