"""Nothing is lost: replays from the dead-letter store, and retries that outlive a worker."""

from __future__ import annotations

import json

import pytest

from tests.support.harness import Relay, event, wait_for
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(120)


def test_a_dead_letter_replayed_from_the_cli_is_delivered(relay: Relay, sandbox: Sandbox) -> None:
    # given an event the target rejected once
    sandbox.add_fault(Fault(api="medallia", status=400, times=1))
    relay.start_worker()
    relay.push(event("md", "undelivered"))
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the dead letter")
    listed = json.loads(relay.cli("dlq", "list", "--json").stdout)

    # when the operator replays it
    replay = relay.cli("dlq", "replay", listed[0]["id"])

    # then it is delivered and the store is empty
    assert replay.returncode == 0, replay.stderr
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the replayed delivery")
    assert relay.dead_letters() == []
    assert [r["status"] for r in sandbox.requests()] == [400, 200]


def test_dlq_list_masks_recipients_and_json_has_the_documented_keys(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a dead letter
    relay.start_worker()
    relay.push(event("nowhere", "sent"))
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the dead letter")

    # when it is listed for people and for scripts
    table = relay.cli("dlq", "list").stdout
    [record] = json.loads(relay.cli("dlq", "list", "--json").stdout)

    # then the table masks the phone number and the JSON record is complete
    assert "+4915112345678" not in table and "+4**********78" in table
    for key in ("id", "event_id", "target", "reason", "attempts", "error", "failed_at", "event"):
        assert key in record
    assert record["event"]["recipient"] == "+4915112345678"


def test_a_parked_retry_outlives_a_killed_worker(relay: Relay, sandbox: Sandbox) -> None:
    # given an event parked for a retry 3 s away
    sandbox.add_fault(Fault(api="medallia", status=503, times=1, retry_after="3"))
    first = relay.start_worker("first")
    relay.push(event("md", "delivered", "m-parked"))
    wait_for(lambda: relay.retries_waiting() == 1, 20, "the retry to be parked")

    # when that worker is killed and, later, a new one starts
    relay.kill_worker(first)
    relay.start_worker("second")

    # then the new worker delivers it, once
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the delivery")
    assert [r["status"] for r in sandbox.requests()] == [503, 200]
    assert relay.retries_waiting() == 0
