"""Three cells through real processes: events of many messages pushed through every way in
(push_events, `relay push`, RPUSH by the documented rule, RPUSH onto the wrong cell, the
ingress) are each handled in their message's cell, in order, none lost and none posted twice;
a receipt and its correlation record meet across ways in."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

import pytest

from tests.cells.conftest import Fleet
from tests.support.harness import event, wait_for
from tests.support.ingress import sf_reference
from worker.dev.callbacks import Message
from worker.intake.push import push_events
from worker.stores.correlations import Correlations
from worker.stores.counters import Counters, settled_events

pytestmark = pytest.mark.timeout(300)


def md_posts(fleet: Fleet, mids: set[str]) -> dict[str, list[str]]:
    """Each message's statuses as the Medallia look-alike accepted them, in order."""
    posted: dict[str, list[str]] = defaultdict(list)
    for request in fleet.sandbox.requests():
        if request["endpoint"] != "messages" or not 200 <= request["status"] < 300:
            continue
        for entry in request["json"]["entry"]:
            for messaging in entry["messaging"]:
                for mid in messaging["delivery"]["mids"]:
                    if mid in mids:
                        posted[mid].append(messaging["delivery"]["status"])
    return posted


def settled(fleet: Fleet) -> int:
    return sum(fleet.relay.in_every_cell(lambda: settled_events(Counters().snapshot())))


def status(mid: str, name: str, second: int) -> dict[str, Any]:
    return event("md", name, mid, occurred_at=f"2026-11-23T10:00:{second:02d}+00:00")


def test_every_way_in_puts_each_message_in_its_cell_in_order_once(fleet: Fleet) -> None:
    relay, tag = fleet.relay, uuid.uuid4().hex[:6]
    mids = [f"m{tag}-{n}" for n in range(60)]
    before = settled(fleet)
    # sent: push_events, relay push, RPUSH by the rule (the CLI's answer for the first)
    assert push_events([status(m, "sent", 1) for m in mids[:20]]) == 20
    assert relay.push(*[status(m, "sent", 1) for m in mids[20:40]]).returncode == 0
    said = relay.cli("cell-for", "md", mids[40]).stdout.split()[0]
    assert int(said) == relay.cell_of("md", mids[40])
    for m in mids[40:]:
        relay.rpush(relay.cell_of("md", m), json.dumps(status(m, "sent", 1)))
    # delivered: the other way round, and by RPUSH onto the first cell whatever the rule says
    assert relay.push(*[status(m, "delivered", 2) for m in mids[:20]]).returncode == 0
    assert push_events([status(m, "delivered", 2) for m in mids[20:40]]) == 20
    relay.rpush(0, *[json.dumps(status(m, "delivered", 2)) for m in mids[40:]])
    wait_for(lambda: settled(fleet) >= before + 120, 120, "120 events to settle")

    posted = md_posts(fleet, set(mids))
    for m in mids:
        # the newest status last, none twice, an older one only before it (or skipped: stale)
        assert posted[m] in (["sent", "delivered"], ["delivered"]), (m, posted[m])
        assert relay.ledger_cells("md", m) == [relay.cell_of("md", m)]
    spread = {relay.cell_of("md", m) for m in mids}
    assert spread == {0, 1, 2}


def test_a_receipt_and_its_record_meet_across_ways_in(fleet: Fleet) -> None:
    relay, ingress = fleet.relay, fleet.ingress
    pmids = [f"pm{uuid.uuid4().hex[:8]}-{n}" for n in range(12)]
    # receipts first, through the ingress: they wait in the cell of (source, provider id)
    for pmid in pmids:
        assert ingress.post("smpp", Message(pmid, "DELIVRD"))[1]["waiting"] == 1
    # their records through `relay correlate` (half) and POST /v1/correlations (the others)
    records = [
        {"source": "smpp", "provider_message_id": p, **sf_reference(f"e-{p}", conversation=True)}
        for p in pmids
    ]
    lines = "\n".join(json.dumps(r) for r in records[:6]) + "\n"
    assert relay.cli("correlate", "-", stdin=lines).returncode == 0
    assert ingress.correlate(*records[6:]) == (200, {"stored": 6, "released": 6})
    # and a record first, its receipt after (by the ingress both)
    late = f"pm{uuid.uuid4().hex[:8]}-late"
    ref = sf_reference(f"e-{late}", conversation=True)
    assert ingress.correlate({"source": "smpp", "provider_message_id": late, **ref})[0] == 200
    assert ingress.post("smpp", Message(late, "DELIVRD"))[1]["accepted"] == 1

    wanted = {f"e-{p}" for p in [*pmids, late]}

    def acknowledged() -> list[str]:
        found = []
        for request in fleet.sandbox.requests():
            if request["endpoint"] == "acknowledgement" and 200 <= request["status"] < 300:
                for ack in request["json"]["acknowledgements"]:
                    found.append(ack["acknowledgedConversationEntryIdentifier"])
        return [f for f in found if f in wanted]

    wait_for(lambda: set(acknowledged()) == wanted, 90, "every receipt acknowledged")
    assert sorted(acknowledged()) == sorted(wanted)  # once each
    for entry in wanted:
        assert relay.ledger_cells("sf", entry) == [relay.cell_of("sf", entry)]
    assert relay.in_every_cell(lambda: Correlations().waiting()) == [0, 0, 0]
    # the receipts waited in more than one cell: their records met them there
    assert len({relay.cells.of_receipt("smpp", p) for p in pmids}) > 1
