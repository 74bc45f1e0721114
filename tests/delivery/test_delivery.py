"""Delivery through real workers to the sandbox: happy paths, retries, rejections, exhaustion."""

from __future__ import annotations

import pytest

from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(90)


def _vendor_requests(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests() if r["api"] != "unknown"]


def test_every_status_reaches_both_apis_as_the_documents_require(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a worker and one event per status for each target (each about messages of its
    # own: statuses of one message would be sent one at a time, newest first)
    relay.start_worker()
    statuses = ("sent", "delivered", "read", "failed", "undelivered")
    events = [event(t, s, f"m-{s}-1", f"m-{s}-2") for t in ("sf", "md") for s in statuses]

    # when they are pushed
    pushed = relay.push(*events)
    relay.wait_settled(len(events))

    # then every request was valid and accepted, and skipped statuses were counted
    assert pushed.returncode == 0, pushed.stderr
    requests = _vendor_requests(sandbox)
    assert [r["problems"] for r in requests if not r["valid"]] == []
    by_endpoint = sorted((r["endpoint"], r["status"]) for r in requests)
    # Pushed together, they travel in one bundle: Medallia receipts share one request and the
    # acknowledgements of one conversation another; an interaction always travels alone.
    assert by_endpoint == sorted(
        [("interactions", 202)] * 4  # failed + undelivered, one request per message id
        + [("acknowledgement", 200)]  # delivered + read: 4 acknowledgements
        + [("messages", 200)]  # sent, delivered, failed, undelivered: 4 entries
    )
    sent = {"sf": ("delivered", "read", "failed", "undelivered"), "md": statuses[:2] + statuses[3:]}
    expected = [f"m-{s}-{n}" for t in ("sf", "md") for s in sent[t] for n in (1, 2)]
    assert sorted(posted_ids(requests)) == sorted(expected)
    assert relay.counts("sf") == {"delivered": 4, "skipped": 1}
    assert relay.counts("md") == {"delivered": 4, "skipped": 1}
    assert relay.dead_letters() == []


def test_two_503s_then_success_delivers_once(relay: Relay, sandbox: Sandbox) -> None:
    # given a target that fails twice with 503 for one message
    sandbox.add_fault(Fault(api="medallia", status=503, times=2, match="m-flaky"))
    relay.start_worker()

    # when the event is pushed
    relay.push(event("md", "delivered", "m-flaky"))
    relay.wait_settled(1)

    # then it was tried three times and delivered exactly once
    statuses = [r["status"] for r in _vendor_requests(sandbox)]
    assert statuses == [503, 503, 200]
    assert relay.counts("md") == {"retried": 2, "delivered": 1}
    assert relay.dead_letters() == []


def test_429_with_retry_after_is_waited_for(relay: Relay, sandbox: Sandbox) -> None:
    # given a target that asks for a 2-second pause (the policy's own backoff is 0.2 s)
    sandbox.add_fault(Fault(api="salesforce", status=429, times=1, retry_after="2"))
    relay.start_worker()

    # when a failure receipt is pushed
    relay.push(event("sf", "failed", "m-limited"))
    relay.wait_settled(1)

    # then the second attempt came at least 2 s after the first
    first, second = _vendor_requests(sandbox)
    assert (first["status"], second["status"]) == (429, 202)
    assert second["time"] - first["time"] >= 2.0


def test_permanent_400_is_dead_lettered_after_one_attempt(relay: Relay, sandbox: Sandbox) -> None:
    # given a target that rejects the request
    sandbox.add_fault(Fault(api="medallia", status=400, times=1))
    relay.start_worker()
    sent = event("md", "failed", "m-bad")

    # when it is pushed
    relay.push(sent)
    relay.wait_settled(1)

    # then one attempt was made and the whole event is a `rejected` dead letter
    assert len(_vendor_requests(sandbox)) == 1
    [letter] = relay.dead_letters()
    assert (letter.reason, letter.attempts, letter.status_code) == ("rejected", 1, 400)
    assert letter.event == sent
    assert letter.event_id == sent["event_id"] and letter.target == "md"
    assert "HTTP 400" in letter.error


def test_only_the_rejected_message_id_of_a_salesforce_failure_is_dead_lettered(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a Salesforce failure for two messages, one of which the API refuses
    sandbox.add_fault(Fault(api="salesforce", status=400, times=0, match="m-refused"))
    relay.start_worker()
    sent = event("sf", "failed", "m-fine", "m-refused")

    # when it is pushed
    relay.push(sent)
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the dead letter")

    # then the dead letter holds the event with only the refused message id
    [letter] = relay.dead_letters()
    assert letter.event == {**sent, "message_ids": ["m-refused"]}
    accepted = [r for r in _vendor_requests(sandbox) if r["status"] == 202]
    assert len(accepted) == 1


def test_retries_run_out_into_an_exhausted_dead_letter(relay: Relay, sandbox: Sandbox) -> None:
    # given a target that is down for good (policy: 4 attempts)
    sandbox.add_fault(Fault(api="medallia", status=503, times=0))
    relay.start_worker()

    # when an event is pushed
    relay.push(event("md", "sent"))
    wait_for(lambda: len(relay.dead_letters()) == 1, 60, "the exhausted dead letter")

    # then it was attempted max_attempts times and dead-lettered as exhausted
    [letter] = relay.dead_letters()
    assert (letter.reason, letter.attempts, letter.status_code) == ("exhausted", 4, 503)
    assert len(_vendor_requests(sandbox)) == 4
    assert [h["status"] for h in letter.history] == [503] * 4


def test_a_dropped_connection_is_retried(relay: Relay, sandbox: Sandbox) -> None:
    # given a target that hangs up once without answering
    sandbox.add_fault(Fault(api="medallia", drop=True, times=1))
    relay.start_worker()

    # when an event is pushed
    relay.push(event("md", "delivered"))
    relay.wait_settled(1)

    # then the second attempt delivered it
    assert [r["status"] for r in _vendor_requests(sandbox)] == [0, 200]
    assert relay.counts("md")["delivered"] == 1


def test_a_refused_coalesced_request_dead_letters_only_the_guilty_event(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a target that refuses any request carrying one bad message id
    sandbox.add_fault(Fault(api="medallia", status=400, times=0, match="m-bad"))
    relay.start_worker()
    events = [event("md", "delivered", m) for m in ("m-good-1", "m-bad", "m-good-2")]

    # when the three are pushed together (one bundle, one coalesced request)
    relay.push(*events)
    relay.wait_settled(3)

    # then the refused request was tried part by part: two delivered, one dead letter
    requests = _vendor_requests(sandbox)
    assert [len(r["json"]["entry"]) for r in requests] == [3, 1, 1, 1]
    assert sorted(posted_ids(requests)) == ["m-good-1", "m-good-2"]
    assert relay.counts("md") == {"delivered": 2, "dead:rejected": 1}
    (letter,) = relay.dead_letters()
    assert letter.event_id == events[1]["event_id"] and letter.attempts == 1


def test_a_coalesced_request_that_fails_is_retried_event_by_event(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a target that answers the first request with 503
    sandbox.add_fault(Fault(api="medallia", status=503, times=1))
    relay.start_worker()

    # when three events are pushed together
    relay.push(*(event("md", "delivered", f"m-{i}") for i in range(3)))
    relay.wait_settled(3)

    # then all three waited, and each came back alone (retries are never coalesced)
    requests = _vendor_requests(sandbox)
    assert [len(r["json"]["entry"]) for r in requests] == [3, 1, 1, 1]
    assert [r["status"] for r in requests] == [503, 200, 200, 200]
    assert relay.counts("md") == {"retried": 3, "delivered": 3}
