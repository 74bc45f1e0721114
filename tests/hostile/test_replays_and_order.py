"""Replays and statuses out of order: each message id is posted once, and none is dropped."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Fault, Sandbox
from worker.stores.deadletters import DeadLetterStore

pytestmark = pytest.mark.timeout(120)


def test_replaying_a_partly_refused_event_while_the_rest_waits_loses_no_message_id(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a failure for m1 and m2: the target refuses m1 once and asks to retry m2 in 3 s
    sandbox.add_fault(Fault(api="salesforce", status=400, times=1, match="m1-"))
    sandbox.add_fault(Fault(api="salesforce", status=503, times=1, retry_after="3", match="m2-"))
    relay.start_worker()
    failure = event("sf", "failed", "m1-x", "m2-x")
    relay.push(failure)
    wait_for(lambda: len(relay.dead_letters()) == 1 and relay.retries_waiting() == 1, 30, "split")

    # when the operator replays m1's dead letter while m2 still waits
    assert relay.cli("dlq", "replay", "--all").returncode == 0
    wait_for(lambda: relay.retries_waiting() == 0 and relay.dead_letters() == [], 30, "both")
    wait_for(lambda: len(set(posted_ids(sandbox.requests()))) == 2, 30, "both posted")

    # then both message ids were accepted exactly once
    assert Counter(posted_ids(sandbox.requests())) == {"m1-x": 1, "m2-x": 1}


def test_two_replays_of_one_dead_letter_post_it_once(relay: Relay, sandbox: Sandbox) -> None:
    # given a dead letter (the target refused the event once), and no worker running
    sandbox.add_fault(Fault(api="medallia", status=400, times=1))
    one = event("md", "delivered")
    relay.start_worker()
    relay.push(one)
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the dead letter")
    relay.stop_all()
    [letter] = relay.dead_letters()

    # when it is replayed twice (a replay that crashed before removing the letter, redone)
    assert relay.cli("dlq", "replay", letter.id).returncode == 0
    DeadLetterStore().add(letter)
    assert relay.cli("dlq", "replay", letter.id).returncode == 0
    relay.start_worker()
    wait_for(lambda: relay.counts("md").get("duplicate") == 1, 30, "both replays")

    # then the event was posted once; the second copy counted as a duplicate
    assert Counter(posted_ids(sandbox.requests())) == {one["message_ids"][0]: 1}
    assert relay.counts("md").get("delivered") == 1


def test_a_newer_status_that_ends_as_a_dead_letter_does_not_silence_an_older_one(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a read acknowledgement the target refuses
    sandbox.add_fault(Fault(api="salesforce", status=400, times=1))
    relay.start_worker()
    read = event("sf", "read", "m-order", occurred_at="2026-11-23T10:05:00+00:00")
    relay.push(read)
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the refused read")

    # when the older delivered status arrives afterwards
    delivered = event("sf", "delivered", "m-order", occurred_at="2026-11-23T10:00:00+00:00")
    relay.push(delivered)
    relay.wait_settled(2)

    # then it is posted: the target hears of the message after all
    assert relay.counts("sf").get("delivered") == 1
    assert relay.counts("sf").get("stale") is None
