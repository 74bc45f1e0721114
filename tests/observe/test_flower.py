"""Flower answers "what happened to event X": through Flower's own HTTP API, a real worker and
the look-alike targets."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.support.flower import tasks
from tests.support.harness import Relay, event, wait_for
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(120)
RECIPIENT = "+4915112345678"


def _task_of(flower: str, event_id: str, state: str) -> dict[str, Any]:
    """The one task Flower's search finds for `event_id`, once it is in `state`."""
    found: list[dict[str, Any]] = []

    def there() -> bool:
        found[:] = tasks(flower, search=event_id)
        return [t["state"] for t in found] == [state]

    try:
        wait_for(there, 60, f"one {state} task for {event_id}")
    except AssertionError:
        print(json.dumps(tasks(flower), indent=1))
        raise
    return found[0]


def test_bundles_delivered_before_the_worker_is_connected_reach_flower(
    relay: Relay, sandbox: Sandbox, flower: str
) -> None:
    # given events waiting in the inbox before any worker runs (a worker's lanes deliver them
    # before its Celery consumer, which Flower's task events usually go through, is connected)
    waiting = [event("md", "delivered") for _ in range(40)]
    relay.push(*waiting)

    # when a worker starts, with task events on from the start
    relay.start_worker()
    relay.wait_settled(40)

    # then every one of them is in a task Flower shows, with its outcome
    def all_seen() -> bool:
        shown = json.dumps(tasks(flower))
        return all(f"{e['event_id']}: delivered" in shown for e in waiting)

    wait_for(all_seen, 30, "every waiting event in Flower")


def test_a_mixed_bundle_is_a_task_per_outcome_each_event_next_to_its_outcome(
    relay: Relay, sandbox: Sandbox, flower: str
) -> None:
    # given a worker watched by Flower, and a target that parks two events and rejects one
    # (Salesforce failures: a request per message id, so each event has its own answer)
    relay.start_worker()
    park = Fault(api="salesforce", status=503, times=0, retry_after="60", match="m-park")
    sandbox.add_fault(park)
    sandbox.add_fault(Fault(api="salesforce", status=400, times=0, match="m-reject"))
    delivered = [event("sf", "failed", f"m-ok-{i}") for i in range(3)]
    parked = [event("sf", "failed", f"m-park-{i}") for i in range(2)]
    rejected = event("sf", "failed", "m-reject-0")

    # when they are pushed together (one bundle)
    relay.push(*delivered, *parked, rejected)

    # then searching a delivered event's id lands on a SUCCESS task saying it was delivered,
    # listing only the delivered events
    ok = _task_of(flower, delivered[0]["event_id"], "SUCCESS")
    assert ok["name"] == "relay.deliver_batch"
    assert ok["args"].startswith("3 events: ")
    for one in delivered:
        assert f"{one['event_id']}: delivered 1 message id(s)" in ok["result"]
    assert all(e["event_id"] not in ok["args"] for e in [*parked, rejected])

    # a parked event lands on a PARKED task (no Revoke for it: see the next test) whose error
    # reads as the worker log's summary does, and whose ETA is when it is tried again
    waiting = _task_of(flower, parked[1]["event_id"], "PARKED")
    for one in parked:
        assert f"{one['event_id']}: retry 1 message id(s) in " in waiting["exception"]
    assert "Retry(" not in waiting["exception"] and "datetime" not in waiting["exception"]
    assert waiting["exception"].startswith("Parked: ")
    assert waiting["eta"]

    # the rejected one lands on a FAILURE task with the reason next to its id
    failed = _task_of(flower, rejected["event_id"], "FAILURE")
    assert failed["name"] == "relay.deliver"
    assert failed["exception"].startswith(f"DeadLettered: {rejected['event_id']}: dead letter ")
    assert "(rejected): HTTP 400" in failed["exception"], failed
    assert RECIPIENT not in json.dumps(tasks(flower))


def test_a_retry_sent_back_by_the_pump_reads_as_the_log_and_offers_no_revoke(
    relay: Relay, sandbox: Sandbox, flower: str
) -> None:
    # given a target that answers 503 twice before it takes the event
    worker = relay.start_worker()
    sandbox.add_fault(Fault(api="medallia", status=503, times=2, retry_after="1", match="m-twice"))
    sent = event("md", "delivered", "m-twice")

    # when it is pushed: its first attempt in a lane, its second a Celery message of the pump
    relay.push(sent)
    relay.wait_settled(1, timeout=60)

    # then Flower has three tasks for it: parked twice, then delivered
    def three() -> bool:
        return len(tasks(flower, search=sent["event_id"])) == 3

    wait_for(three, 30, "three tasks for the event")
    found = sorted(tasks(flower, search=sent["event_id"]), key=lambda t: t["args"])
    assert [(t["args"][-9:], t["state"]) for t in found] == [
        ("attempt 1", "PARKED"),
        ("attempt 2", "PARKED"),
        ("attempt 3", "SUCCESS"),
    ]
    # the pump's message (attempt 2) reads as the lane's does: not Celery's Retry(Retry(...))
    for task in found[:2]:
        assert task["exception"].startswith(f"Parked: {sent['event_id']}: retry 1 message id(s)")
        # ... and as the worker's log line of the same attempt
        outcome = task["exception"].removeprefix(f"Parked: {sent['event_id']}: ")
        assert outcome in (relay.tmp / "w-1.log").read_text(), outcome
    # Flower offers Revoke for RECEIVED and RETRY tasks only; a parked retry is neither
    for task in found[:2]:
        with requests.get(f"{flower}/task/{task['uuid']}", timeout=5) as page:
            page.raise_for_status()
            assert "PARKED" in page.text and 'id="task-revoke"' not in page.text
    assert worker.poll() is None


def test_arguments_and_results_are_masked_and_free_of_markup(
    relay: Relay, sandbox: Sandbox, flower: str
) -> None:
    # given a worker watched by Flower
    relay.start_worker()
    script = "<script>alert('x')</script>&co"
    marked = event("md", "delivered", event_id=script)
    # an invalid event whose fields hold a phone number, an address and markup
    invalid = {
        "event_id": RECIPIENT,
        "target": "jane.doe@example.com",
        "status": "<b>bold</b>",
        "message_ids": ["m-1"],
    }

    # when both are pushed
    relay.push(marked, invalid)
    relay.wait_settled(2)

    # then Flower's API has them as text: no markup, no phone number, no address
    escaped = "\\x3cscript\\x3ealert('x')\\x3c/script\\x3e\\x26co"
    task = _task_of(flower, escaped, "SUCCESS")
    assert task["args"] == f"{escaped} -> md delivered attempt 1"
    assert f"{escaped}: delivered" in task["result"]
    bad = _task_of(flower, "+4**********78", "FAILURE")
    assert bad["args"] == "+4**********78 -> j***@example.com \\x3cb\\x3ebold\\x3c/b\\x3e attempt 1"
    assert "invalid" in bad["exception"]
    everything = json.dumps(tasks(flower))
    for raw in ("<script>", "<b>", RECIPIENT, RECIPIENT[1:], "jane.doe@"):
        assert raw not in everything, raw
    # and Flower's own page shows the id as text
    with requests.get(f"{flower}/task/{task['uuid']}", timeout=5) as page:
        assert "<script>alert" not in page.text and "x3cscript" in page.text
