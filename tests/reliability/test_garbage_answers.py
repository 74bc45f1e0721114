"""Garbage answers through real workers: each is handled as README "What an answer means" says.

HTML error pages, truncated or lying JSON, Salesforce error codes inside a 200, a body that
trickles in forever, a redirect, an answer cut short and an empty 200. Run with `pytest -s` to
see each scenario's figures (attempts, seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.harness import Relay, event, wait_for
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(90)

SLOW_TIMEOUT = 2.0  # the `md-slow` target's per-request timeout, in seconds
SLOW_TARGET = """
[targets.md-slow]
kind = "medallia"
base_url = "{sandbox}/medallia"
channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"
auth = {{ type = "bearer", token = "${{MD_TOKEN}}" }}
timeout = {timeout:g}
"""
BAD_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


def _vendor(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r["api"] != "unknown"]


def _eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _report(scenario: str, sandbox: Sandbox, started: float, **extra: Any) -> None:
    requests = _vendor(sandbox)
    figures = " ".join(f"{k}={v}" for k, v in extra.items())
    print(
        f"\n[{scenario}] attempts={len(requests)} statuses={[r['status'] for r in requests]} "
        f"seconds={time.monotonic() - started:.2f} {figures}".rstrip()
    )


def _retried_then_delivered(
    relay: Relay, sandbox: Sandbox, target: str, statuses: list[int]
) -> None:
    relay.wait_settled(1)
    assert [r["status"] for r in _vendor(sandbox)] == statuses
    assert [r["valid"] for r in _vendor(sandbox)] == [True] * len(statuses)
    assert relay.counts(target) == {"retried": len(statuses) - 1, "delivered": 1}
    assert relay.dead_letters() == []


def test_html_bad_gateway_page_is_retried_then_delivered(relay: Relay, sandbox: Sandbox) -> None:
    # given Salesforce behind a proxy that answers one request with an HTML 502 page
    fault = Fault(api="salesforce", status=502, body=BAD_GATEWAY, content_type="text/html")
    sandbox.add_fault(fault)
    relay.start_worker()

    # when a failure receipt is pushed
    started = time.monotonic()
    relay.push(event("sf", "failed", "m-html"))

    # then the page meant "retry", and the retry delivered it
    _retried_then_delivered(relay, sandbox, "sf", [502, 202])
    _report("html 502", sandbox, started)


def test_truncated_json_in_a_salesforce_202_is_retried_then_delivered(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given Salesforce accepting once with a 202 whose JSON body is cut short
    body = '{"success": tr'
    sandbox.add_fault(
        Fault(api="salesforce", status=202, body=body, content_type="application/json")
    )
    relay.start_worker()

    # when a failure receipt is pushed
    started = time.monotonic()
    relay.push(event("sf", "failed", "m-cut-json"))

    # then a 2xx that cannot be read was not trusted: retried, then delivered
    _retried_then_delivered(relay, sandbox, "sf", [202, 202])
    _report("sf 202 truncated json", sandbox, started)


def test_salesforce_200_with_retryable_error_10019_is_retried_then_delivered(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given Salesforce answering 200 but "success": false with the retryable code 10019
    body = '{"success": false, "code": 10019, "message": "read-only"}'
    sandbox.add_fault(
        Fault(api="salesforce", status=200, body=body, content_type="application/json")
    )
    relay.start_worker()

    # when a delivery receipt (an acknowledgement, answered 200) is pushed
    started = time.monotonic()
    relay.push(event("sf", "delivered", "m-read-only"))

    # then the error code won over the 200: retried, then delivered
    _retried_then_delivered(relay, sandbox, "sf", [200, 200])
    _report("sf 200 code 10019", sandbox, started)


def test_salesforce_200_with_permanent_error_10004_is_rejected_at_once(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given Salesforce answering 200 but "success": false with the permanent code 10004
    body = '{"success": false, "code": 10004}'
    sandbox.add_fault(
        Fault(api="salesforce", status=200, body=body, content_type="application/json")
    )
    relay.start_worker()
    sent = event("sf", "delivered", "m-refused")

    # when it is pushed
    started = time.monotonic()
    relay.push(sent)
    relay.wait_settled(1)

    # then it is a `rejected` dead letter after one attempt, naming the code
    [letter] = relay.dead_letters()
    assert (letter.reason, letter.attempts, letter.status_code) == ("rejected", 1, 200)
    assert "10004" in letter.error
    assert letter.event == sent
    assert len(_vendor(sandbox)) == 1
    _report("sf 200 code 10004", sandbox, started, error=repr(letter.error))


def test_endless_slow_body_ends_within_the_timeout_then_is_retried_and_delivered(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a target with a 2 s timeout whose first answer trickles one byte every 0.5 s
    config = relay.tmp / "relay.toml"
    config.write_text(
        config.read_text() + SLOW_TARGET.format(sandbox=sandbox.url, timeout=SLOW_TIMEOUT)
    )
    sandbox.add_fault(Fault(api="medallia", trickle=0.5, times=1))
    worker = relay.start_worker()

    # when an event is pushed
    started = time.monotonic()
    relay.push(event("md-slow", "delivered", "m-trickle"))
    wait_for(lambda: len(_vendor(sandbox)) >= 1, 15, "the first attempt")

    # then the first attempt gives up within timeout + 2 s and the retry delivers it
    limit = SLOW_TIMEOUT + 2
    retried = _eventually(lambda: len(_vendor(sandbox)) >= 2, limit + 3)
    if not retried:  # the attempt is stuck: free the worker thread and the sandbox trickle
        stuck_for = time.time() - _vendor(sandbox)[0]["time"]
        relay.kill_worker(worker)
        _report("trickle", sandbox, started, attempt_still_running_after=f"{stuck_for:.1f}s")
    assert retried, f"the trickled attempt did not end within {limit + 3:g}s"
    first, second = _vendor(sandbox)[:2]
    attempt_took = second["time"] - first["time"]  # the attempt, plus backoff and pump poll
    relay.wait_settled(1)
    _report("trickle", sandbox, started, first_attempt_to_retry=f"{attempt_took:.2f}s")
    assert attempt_took <= limit
    assert [r["status"] for r in _vendor(sandbox)] == [200, 200]
    assert relay.counts("md-slow") == {"retried": 1, "delivered": 1}


def test_redirect_is_rejected_at_once_and_not_followed(relay: Relay, sandbox: Sandbox) -> None:
    # given Salesforce answering 302 to somewhere else (a wrong base_url, say)
    elsewhere = sandbox.url + "/moved/salesforce/api/v1/interactions"
    sandbox.add_fault(Fault(api="salesforce", status=302, redirect=elsewhere))
    relay.start_worker()
    sent = event("sf", "failed", "m-moved")

    # when a failure receipt is pushed
    started = time.monotonic()
    relay.push(sent)
    relay.wait_settled(1)

    # then it is a `rejected` dead letter after one attempt pointing at base_url
    [letter] = relay.dead_letters()
    assert (letter.reason, letter.attempts, letter.status_code) == ("rejected", 1, 302)
    assert "base_url" in letter.error
    # and the Location was not followed: nothing arrived at the redirect target
    paths = [r["path"] for r in sandbox.requests()]
    assert paths == ["/salesforce/api/v1/interactions"]
    _report("redirect 302", sandbox, started, error=repr(letter.error))


def test_answer_cut_short_is_retried_then_delivered(relay: Relay, sandbox: Sandbox) -> None:
    # given Salesforce announcing a longer body than it sends, then hanging up, once
    sandbox.add_fault(Fault(api="salesforce", truncate=True))
    relay.start_worker()

    # when a delivery receipt is pushed
    started = time.monotonic()
    relay.push(event("sf", "delivered", "m-cut"))

    # then the cut-off answer counted as no answer: retried, then delivered
    _retried_then_delivered(relay, sandbox, "sf", [200, 200])
    _report("truncated answer", sandbox, started)


def test_empty_200_from_medallia_is_delivered(relay: Relay, sandbox: Sandbox) -> None:
    # given Medallia answering 200 with an empty text/plain body
    sandbox.add_fault(Fault(api="medallia", status=200, body="", content_type="text/plain"))
    relay.start_worker()

    # when an event is pushed
    started = time.monotonic()
    relay.push(event("md", "delivered", "m-empty"))
    relay.wait_settled(1)

    # then it is delivered on the first attempt
    assert [r["status"] for r in _vendor(sandbox)] == [200]
    assert relay.counts("md") == {"delivered": 1}
    assert relay.dead_letters() == []
    _report("medallia empty 200", sandbox, started)
