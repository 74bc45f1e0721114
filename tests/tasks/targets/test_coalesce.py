"""Coalescing translated requests: which travel together, and that merged ones still pass the
vendor documents' checks (the sandbox's own, strict checks)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.outbound import OutboundRequest
from tasks.schemas import load_event
from tasks.targets.medallia import ENTRIES_PER_REQUEST, MedalliaOptions
from tasks.targets.medallia import KIND as MEDALLIA
from tasks.targets.salesforce import ACKS_PER_REQUEST, SalesforceOptions
from tasks.targets.salesforce import KIND as SALESFORCE
from worker.dev.sandbox import medallia as medallia_checks
from worker.dev.sandbox import salesforce as salesforce_checks

MD = MedalliaOptions(base_url="https://md.example", channel_guid="6f1c2a5e-0000-4000-8000-0001")
SF = SalesforceOptions(
    base_url="https://sf.example", org_id="00D5g000004xyzA", authorization_context="Ctx_1"
)
AUTH = {"Authorization": "Bearer t"}


def raw(n: int, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"evt-{n}",
        "target": "t",
        "status": "delivered",
        "message_ids": [f"m-{n}"],
        "channel": "page-1",
        "recipient": "+4915112345678",
        "conversation_id": "conv-1",
        "occurred_at": 1_770_163_786_000 + n,
    }
    event.update(overrides)
    if event["status"] in ("failed", "undelivered"):
        event.setdefault("error", {"code": 30003, "name": "Unreachable"})
    return event


def plans(kind: Any, options: Any, events: list[dict[str, Any]]) -> list[OutboundRequest]:
    out: list[OutboundRequest] = []
    for event in events:
        result = kind.translate(load_event(event), options)
        assert isinstance(result, list)
        out += result
    return out


# name, kind, options, events, expected groups (indexes of translated requests per request)
CASES = [
    ("medallia one channel", MEDALLIA, MD, [raw(i) for i in range(3)], [(0, 1, 2)]),
    (
        "medallia mixed statuses and pages",
        MEDALLIA,
        MD,
        [raw(0), raw(1, status="failed", channel="page-2"), raw(2, status="undelivered")],
        [(0, 1, 2)],
    ),
    (
        "medallia entry limit",
        MEDALLIA,
        MD,
        [raw(i) for i in range(ENTRIES_PER_REQUEST + 1)],
        [tuple(range(ENTRIES_PER_REQUEST)), (ENTRIES_PER_REQUEST,)],
    ),
    ("medallia alone", MEDALLIA, MD, [raw(0)], [(0,)]),
    ("salesforce acks one conversation", SALESFORCE, SF, [raw(0), raw(1, status="read")], [(0, 1)]),
    (
        "salesforce acks of other conversations or senders stay apart",
        SALESFORCE,
        SF,
        [raw(0), raw(1, conversation_id="conv-2"), raw(2, recipient="+15550001"), raw(3)],
        [(0, 3), (1,), (2,)],
    ),
    (
        "salesforce failures travel alone",
        SALESFORCE,
        SF,
        [raw(0, status="failed"), raw(1, status="failed"), raw(2)],
        [(0,), (1,), (2,)],
    ),
    (
        "salesforce 25 acknowledgements per request",
        SALESFORCE,
        SF,
        [
            raw(0, message_ids=[f"a{i}" for i in range(20)]),
            raw(1, message_ids=["b1", "b2"]),
            raw(2, message_ids=[f"c{i}" for i in range(4)]),
        ],
        [(0, 1), (2,)],
    ),
    (
        "salesforce full chunks",
        SALESFORCE,
        SF,
        [raw(i) for i in range(ACKS_PER_REQUEST + 2)],
        [tuple(range(ACKS_PER_REQUEST)), (ACKS_PER_REQUEST, ACKS_PER_REQUEST + 1)],
    ),
]


@pytest.mark.parametrize(
    ("kind", "options", "events", "groups"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_coalesce_groups(
    kind: Any, options: Any, events: list[dict[str, Any]], groups: list[tuple[int, ...]]
) -> None:
    requests = plans(kind, options, events)
    merged = kind.coalesce(requests)
    assert [indexes for _, indexes in merged] == groups
    for request, indexes in merged:
        if len(indexes) == 1:  # a lone request is sent exactly as translated (same ids)
            assert request is requests[indexes[0]]
        expected = tuple(mid for i in indexes for mid in requests[i].message_ids)
        assert request.message_ids == expected
        checks = medallia_checks if kind is MEDALLIA else salesforce_checks
        _, problems, auth = checks.check_request(
            request.endpoint, {**request.headers, **AUTH}, request.body
        )
        assert problems == [] and auth is None, problems


def test_merged_medallia_body_keeps_every_entry_in_order() -> None:
    requests = plans(MEDALLIA, MD, [raw(0), raw(1, status="failed"), raw(2)])
    ((request, _),) = MEDALLIA.coalesce(requests)
    entries = json.loads(request.body)["entry"]
    assert [e["messaging"][0]["delivery"]["mids"] for e in entries] == [["m-0"], ["m-1"], ["m-2"]]
    assert "error" in entries[1]["messaging"][0]


def test_merged_salesforce_acks_have_a_stable_request_id_of_their_own() -> None:
    requests = plans(SALESFORCE, SF, [raw(0), raw(1)])
    ((first, _),) = SALESFORCE.coalesce(requests)
    ((again, _),) = SALESFORCE.coalesce(requests)
    assert first.headers["RequestId"] == again.headers["RequestId"]
    assert first.headers["RequestId"] not in {r.headers["RequestId"] for r in requests}
    acks = json.loads(first.body)["acknowledgements"]
    assert [a["acknowledgedConversationEntryIdentifier"] for a in acks] == ["m-0", "m-1"]
