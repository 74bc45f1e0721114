"""Medallia Conversations custom-channel adapter API: delivery-status receipts.

Follows the vendor page on delivery-status receipts with the corrections the vendor's reference
connectors show: `time` is epoch seconds, `error.code` an integer with `error.name` required,
`error` present exactly for failed/undelivered, `accept: text/plain` always, and no deprecated
`watermark`.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tasks.events import FAILURE_STATUSES, Event
from tasks.outbound import (
    Merged,
    NotDeliverable,
    OutboundRequest,
    Skip,
    coalesce,
    dump_json,
    load_json,
)
from tasks.targets.base import join_url, required_text

_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_GUID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# A "+"-prefixed phone number written with separators ("+49 151 1234-5678").
_FORMATTED_PHONE = re.compile(r"^\+[\d\s().-]+$")
_SEPARATORS = re.compile(r"[\s().-]")
# Entries per coalesced request: the API takes "one or more" and names no maximum; this keeps a
# request near 20 KB and a rejected one cheap to retry entry by entry.
ENTRIES_PER_REQUEST = 50


@dataclass(frozen=True, slots=True)
class MedalliaOptions:
    """The target-table keys a Medallia target needs."""

    base_url: str
    channel_guid: str


class MedalliaKind:
    """Registry entry for `kind = "medallia"`."""

    name = "medallia"
    auth_types = frozenset({"bearer", "client_credentials", "hub_signature"})

    def parse_options(
        self, table: Mapping[str, Any], where: str
    ) -> tuple[MedalliaOptions, list[str]]:
        problems: list[str] = []
        guid = required_text(table, "channel_guid", where, problems)
        if guid and not _GUID.match(guid):
            problems.append(f"{where}.channel_guid: letters, digits and '-' only (a channel id)")
        return MedalliaOptions(base_url=str(table.get("base_url", "")), channel_guid=guid), problems

    def translate(self, event: Event, options: Any) -> list[OutboundRequest] | Skip:
        assert isinstance(options, MedalliaOptions)
        if event.status == "read":
            return Skip("Medallia receipts have no 'read' status")
        messaging: dict[str, Any] = {
            "sender": {"id": sender_id(event.recipient)},
            "recipient": {"id": event.channel},
            "delivery": {"mids": list(event.message_ids), "status": event.status},
        }
        if event.status in FAILURE_STATUSES:
            assert event.error is not None  # the schema guarantees it for failure statuses
            error: dict[str, Any] = {
                "code": medallia_error_code(event.error.code),
                "name": event.error.name,
            }
            if event.error.message is not None:
                error["message"] = event.error.message
            messaging["error"] = error
        guid = options.channel_guid
        body = {
            "object": "page",
            "entry": [
                {"id": event.channel, "time": event.occurred_ms // 1000, "messaging": [messaging]}
            ],
        }
        return [
            OutboundRequest(
                api="medallia",
                endpoint="messages",
                method="POST",
                url=join_url(options.base_url, f"/apis/v0/channels/{guid}/messages"),
                headers={"accept": "text/plain", "content-type": "application/json"},
                body=dump_json(body),
                message_ids=event.message_ids,
            )
        ]

    def coalesce(self, requests: Sequence[OutboundRequest]) -> list[Merged]:
        """Receipts for one channel travel together: one request, one entry per event."""
        return coalesce(requests, _same_channel, lambda _: 1, ENTRIES_PER_REQUEST, _merge)


KIND = MedalliaKind()


def _same_channel(request: OutboundRequest) -> Hashable:
    return (request.url, tuple(sorted(request.headers.items())))


def _merge(requests: list[OutboundRequest]) -> OutboundRequest:
    entries = [entry for r in requests for entry in load_json(r.body)["entry"]]
    return replace(
        requests[0],
        body=dump_json({"object": "page", "entry": entries}),
        message_ids=tuple(mid for r in requests for mid in r.message_ids),
    )


def sender_id(recipient: str) -> str:
    """Medallia wants phone numbers in E.164: drop the separators of a formatted "+" number."""
    if _FORMATTED_PHONE.match(recipient):
        return _SEPARATORS.sub("", recipient)
    return recipient


def medallia_error_code(code: int | str) -> int:
    """Medallia wants an integer code: convert a numeric string, refuse anything else."""
    if isinstance(code, int):
        return code
    if _INTEGER.match(code.strip()):
        return int(code.strip())
    raise NotDeliverable(f"error.code: Medallia needs an integer error code, got {code!r}")
