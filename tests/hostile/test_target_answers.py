"""Targets that answer what they like: each answer settles its event, and none posts twice."""

from __future__ import annotations

import json

import pytest

from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(120)

ABSURD_DATE = "Mon, 01 Jan 2024 00:00:00 +99999999"


def test_a_salesforce_outage_page_saying_success_false_is_retried_not_dead_lettered(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a Salesforce target that answers 503 with `"success": false` twice
    body = json.dumps({"success": False, "message": "Service Unavailable"})
    sandbox.add_fault(Fault(api="salesforce", status=503, times=2, body=body, retry_after="0"))
    relay.start_worker()

    # when a failure is pushed
    failure = event("sf", "failed")
    relay.push(failure)
    relay.wait_settled(1)

    # then it was retried and delivered: no dead letter
    assert relay.dead_letters() == []
    assert posted_ids(sandbox.requests()) == failure["message_ids"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            json.dumps({"errorCode": "²", "success": False}), "success: false", id="super2"
        ),
        pytest.param(json.dumps({"errorCode": "9" * 5000}), "HTTP 400", id="5000-digits"),
        pytest.param('{"errors":' * 3000 + "{}" + "}" * 3000, "HTTP 400", id="nested-3000"),
    ],
)
def test_a_body_that_once_crashed_the_classifier_is_a_rejection(
    relay: Relay, sandbox: Sandbox, body: str, expected: str
) -> None:
    # given a Salesforce target that refuses with an odd body, and an event beside it
    sandbox.add_fault(Fault(api="salesforce", status=400, times=1, body=body, match="m-odd"))
    relay.start_worker()

    # when both are pushed together
    odd, fine = event("sf", "failed", "m-odd"), event("md", "delivered")
    relay.push(odd, fine)
    relay.wait_settled(2)

    # then the odd one is a rejected dead letter, the other one went out
    [letter] = relay.dead_letters()
    assert (letter.reason, letter.event_id) == ("rejected", odd["event_id"])
    assert expected in letter.error
    assert fine["message_ids"][0] in posted_ids(sandbox.requests())


def test_an_accepted_request_with_an_absurd_retry_after_is_not_posted_again(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a target that accepts, with a Retry-After whose zone overflows date arithmetic
    sandbox.add_fault(Fault(api="medallia", status=200, times=0, retry_after=ABSURD_DATE))
    relay.start_worker()

    # when an event is pushed
    one = event("md", "delivered")
    relay.push(one)
    relay.wait_settled(1)

    # then it was posted once and counted delivered
    assert posted_ids(sandbox.requests()) == one["message_ids"]
    assert relay.counts("md") == {"delivered": 1}


def test_a_partly_refused_partly_parked_event_settles_as_dead(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a failure for two messages: the target refuses one and asks to retry the other
    sandbox.add_fault(Fault(api="salesforce", status=400, times=0, match="m-refused"))
    sandbox.add_fault(Fault(api="salesforce", status=503, times=0, match="m-later"))
    relay.start_worker()

    # when it is pushed
    relay.push(event("sf", "failed", "m-refused", "m-later"))
    wait_for(lambda: relay.dead_letters() and relay.retries_waiting() == 1, 30, "settling")

    # then the bundle's state is dead (a dead letter outranks a retry)
    log = (relay.tmp / "w-0.log").read_text()
    assert "relay.deliver in a lane: dead: " in log
