"""What operators see: Flower's task states, Sentry events, Prometheus metrics, and logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.support.flower import get
from tests.support.harness import Relay, event, wait_for
from tests.support.sentry_standin import SentryStandIn
from worker.dev.local_redis import free_port
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(120)
RECIPIENT = "+4915112345678"


def _flower_tasks_by_event(flower: str) -> dict[str, dict[str, Any]]:
    """Flower's tasks keyed by the event id their label starts with."""
    tasks = get(f"{flower}/api/tasks").values()
    return {t["args"].split(" ")[0]: t for t in tasks if t.get("args")}


def _settled_tasks(flower: str, count: int) -> dict[str, dict[str, Any]]:
    """Wait until Flower shows `count` tasks in a final state; return them by event id."""

    def settled() -> bool:
        states = _flower_tasks_by_event(flower)
        final = ("SUCCESS", "FAILURE", "PARKED")
        return len(states) == count and all(t["state"] in final for t in states.values())

    wait_for(settled, 60, f"{count} settled tasks in Flower")
    return _flower_tasks_by_event(flower)


def test_flower_shows_each_delivery_with_a_truthful_state_and_no_recipient(
    relay: Relay, sandbox: Sandbox, flower: str
) -> None:
    # given a worker watched by Flower, and a target that rejects one event and delays another
    relay.start_worker()
    sandbox.add_fault(Fault(api="medallia", status=400, times=0, match="m-rejected"))
    sandbox.add_fault(
        Fault(api="medallia", status=503, times=0, retry_after="60", match="m-parked")
    )
    delivered, rejected, parked = (
        event("md", "delivered", m) for m in ("m-ok", "m-rejected", "m-parked")
    )

    # when the three events are pushed one by one (each its own message: pushed together
    # they would travel as one bundle, see the next test)
    for one in (delivered, rejected, parked):
        relay.push(one)

    # then Flower lists them as SUCCESS, FAILURE (with the reason) and PARKED
    seen = _settled_tasks(flower, 3)
    assert seen[delivered["event_id"]]["state"] == "SUCCESS"
    assert seen[rejected["event_id"]]["state"] == "FAILURE"
    assert "rejected" in seen[rejected["event_id"]]["exception"]
    assert seen[parked["event_id"]]["state"] == "PARKED"
    task = seen[delivered["event_id"]]
    assert task["name"] == "relay.deliver"
    assert task["args"] == f"{delivered['event_id']} -> md delivered attempt 1"
    workers = get(f"{flower}/api/workers?refresh=1")
    assert workers, "Flower sees the worker"
    everything = json.dumps([get(f"{flower}/api/tasks"), workers])
    assert RECIPIENT not in everything and RECIPIENT[1:] not in everything


def test_flower_shows_a_bundle_as_one_task_labelled_event_by_event(
    relay: Relay, sandbox: Sandbox, flower: str
) -> None:
    # given a worker watched by Flower
    relay.start_worker()
    events = [event("md", "delivered", f"m-bundle-{i}") for i in range(3)]

    # when three events are pushed together
    relay.push(*events)

    # then they travel in one relay.deliver_batch task whose label names each, not its data
    def bundles() -> list[dict[str, Any]]:
        tasks = get(f"{flower}/api/tasks").values()
        return [t for t in tasks if t.get("name") == "relay.deliver_batch"]

    wait_for(lambda: [t["state"] for t in bundles()] == ["SUCCESS"], 60, "the bundle's task")
    (task,) = bundles()
    labels = "; ".join(f"{e['event_id']} -> md delivered attempt 1" for e in events)
    assert task["args"] == f"3 events: {labels}"
    assert "delivered 1 message id(s)" in task["result"]
    assert RECIPIENT not in json.dumps(task)
    assert relay.counts("md") == {"delivered": 3}


def test_sentry_gets_one_scrubbed_event_per_dead_letter_and_none_per_retry(
    relay: Relay, sandbox: Sandbox, sentry: SentryStandIn
) -> None:
    # given a worker reporting to a local Sentry stand-in
    relay.start_worker()
    sandbox.add_fault(Fault(api="salesforce", status=400, times=1))
    sandbox.add_fault(Fault(api="medallia", status=503, times=1))

    # when one event is rejected and another retried then delivered
    relay.push(event("sf", "failed", "m-1"), event("md", "delivered"))
    relay.wait_settled(2)
    wait_for(lambda: len(sentry.events()) >= 1, 20, "the Sentry event")

    # then exactly one event arrived, tagged and grouped, without secrets or recipients
    [report] = sentry.events()
    assert report["tags"]["target"] == "sf"
    assert report["tags"]["reason"] == "rejected"
    assert report["tags"]["status_code"] == "400"
    assert report["fingerprint"] == ["relay-dead-letter", "sf", "rejected"]
    raw = sentry.everything().decode()
    for secret in ("sf-test-token", "md-test-token", RECIPIENT, RECIPIENT[1:]):
        assert secret not in raw


def test_metrics_are_scraped_from_the_worker(relay: Relay, sandbox: Sandbox) -> None:
    # given a worker serving metrics
    port = free_port()
    relay.env["RELAY_METRICS_PORT"] = str(port)
    relay.start_worker()
    sandbox.add_fault(Fault(api="medallia", status=503, times=1))

    # when an event needs two attempts and another is unroutable
    relay.push(event("md", "delivered"), event("nowhere", "sent"))
    relay.wait_settled(2)

    # then the counters, histograms and gauges say so
    with requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.text
    assert 'relay_deliveries_total{outcome="delivered",target="md"} 1.0' in text
    assert 'relay_deliveries_total{outcome="retried",target="md"} 1.0' in text
    # an unknown target's name is not a label: every such name counts under one
    assert 'relay_deliveries_total{outcome="dead:unroutable",target="(unknown)"} 1.0' in text
    assert 'relay_attempts_per_delivered_event_bucket{le="2.0",target="md"} 1.0' in text
    assert 'relay_request_duration_seconds_count{endpoint="messages",target="md"} 2.0' in text
    assert "relay_dead_letters 1.0" in text
    assert "relay_retries_waiting 0.0" in text
    assert "relay_queue_depth 0.0" in text


def test_json_logs_have_one_line_per_attempt_without_personal_data(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a worker logging JSON
    relay.env["RELAY_LOG_FORMAT"] = "json"
    relay.env["RELAY_LOG_LEVEL"] = "DEBUG"  # delivered attempts too
    worker = relay.start_worker("jsonlog")
    sandbox.add_fault(Fault(api="medallia", status=503, times=1))
    sent = event("md", "delivered")

    # when an event needs two attempts
    relay.push(sent)
    relay.wait_settled(1)
    relay.stop_all()

    # then two attempt lines carry the documented fields, and nothing personal or secret
    log_text = (relay.tmp / "jsonlog-0.log").read_text()
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    attempts = [line for line in lines if line["logger"] == "relay.attempt"]
    assert [(a["attempt"], a["http_status"], a["outcome"]) for a in attempts] == [
        (1, 503, "retry"),
        (2, 200, "delivered"),
    ]
    assert attempts[0]["next_retry"] and attempts[1]["next_retry"] is None
    assert all(a["event_id"] == sent["event_id"] and a["target"] == "md" for a in attempts)
    assert all("duration_ms" in a for a in attempts)
    assert RECIPIENT not in log_text and "md-test-token" not in log_text
    assert worker.returncode is not None


def test_an_unexpected_worker_error_reaches_sentry_without_the_message_body(
    relay: Relay,
) -> None:
    # given a worker reporting to a local Sentry stand-in
    standin = SentryStandIn().start()
    relay.env["SENTRY_DSN"] = standin.dsn
    try:
        relay.start_worker()
        # when a malformed task message (not made by the relay) arrives
        relay.send_task("relay.deliver", recipient=RECIPIENT)
        wait_for(lambda: len(standin.events()) >= 1, 30, "the Sentry event")

        # then Sentry hears of the exception, without the message's content
        [report] = standin.events()
        assert report["exception"]["values"][-1]["type"] == "TypeError"
        assert RECIPIENT not in standin.everything().decode()
    finally:
        standin.stop()
