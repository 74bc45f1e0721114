"""`relay retries show|now` against a real Redis and worker: a parked event found by its event
id, and sent at once when its target is back instead of after its long backoff."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tasks.envelope import Envelope
from tests.support.harness import CONFIG, Relay, event, own_key_prefix, wait_for
from worker.dev.sandbox import Fault, Sandbox
from worker.stores.retries import RetrySchedule

pytestmark = pytest.mark.timeout(120)
# Backoffs of ten minutes and more, so that only `retries now` can send them within the test.
SLOW_RETRIES = CONFIG.replace("base_delay = 0.2", "base_delay = 600.0").replace(
    "max_delay = 5.0", "max_delay = 1800.0"
)


@pytest.fixture
def outage(tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch):
    """Both targets down (503, Retry-After ten minutes), the first failure opening a circuit
    for ten minutes; two Medallia events and one Salesforce event parked."""
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, config=SLOW_RETRIES)
    relay.env.update(
        RELAY_BREAKER_THRESHOLD="1", RELAY_BREAKER_COOLDOWN="600", RELAY_BREAKER_MAX_COOLDOWN="600"
    )
    for api in ("medallia", "salesforce"):
        sandbox.add_fault(Fault(api=api, status=503, times=0, retry_after="600"))
    try:
        relay.start_worker()
        relay.push(event("md", "delivered", "m-1", event_id="ev-md-1"))
        relay.push(event("md", "delivered", "m-2", event_id="ev-md-2"))
        relay.push(event("sf", "failed", "s-1", event_id="ev-sf-1"))
        wait_for(lambda: relay.retries_waiting() == 3, 30, "three parked events")
        yield relay
    finally:
        relay.stop_all()


def test_retries_show_finds_a_parked_event_by_its_event_id(outage: Relay) -> None:
    # when the operator opens the parked event by its event id, and by the listing's id
    by_event = outage.cli("retries", "show", "ev-md-1")
    [listed] = [
        r
        for r in json.loads(outage.cli("retries", "list", "--json").stdout)
        if r["event_id"] == "ev-md-1"
    ]
    by_id = outage.cli("retries", "show", listed["id"])

    # then both show it, with a whole next attempt time
    assert by_event.returncode == 0 and by_event.stdout == by_id.stdout
    assert "ev-md-1" in by_event.stdout and listed["next_attempt_at"].endswith("Z")
    assert outage.cli("retries", "show", "ev-nope").returncode == 1


def test_retries_now_sends_a_targets_parked_events_when_it_is_back(
    outage: Relay, sandbox: Sandbox
) -> None:
    # given both targets back, their events parked for ten minutes and more
    sandbox.clear_faults()
    started = time.monotonic()

    # when the operator sends Medallia's now
    result = outage.cli("retries", "now", "--target", "md")

    # then its circuit is closed, both are delivered within seconds, Salesforce's waits
    assert result.returncode == 0, result.stderr
    assert "circuit of md closed" in result.stdout
    assert "2 parked retry(ies) due now" in result.stdout
    wait_for(lambda: outage.counts("md").get("delivered") == 2, 20, "md's deliveries")
    assert time.monotonic() - started < 25
    assert outage.retries_waiting() == 1

    # and one event by its id, while an unknown id is an error
    assert outage.cli("retries", "now", "ev-sf-1").returncode == 0
    wait_for(lambda: outage.counts("sf").get("delivered") == 1, 20, "sf's delivery")
    unknown = outage.cli("retries", "now", "ev-nope")
    assert unknown.returncode == 1 and "ev-nope" in unknown.stderr


def test_retries_now_needs_one_choice(outage: Relay) -> None:
    for args in ((), ("ev-md-1", "--all"), ("--target", "md", "--all")):
        result = outage.cli("retries", "now", *args)
        assert result.returncode == 2, args


def test_bringing_forward_leaves_what_a_pump_is_claiming(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with own_key_prefix(redis_url, monkeypatch, "forward"):
        # given one retry a pump has just claimed (dated one lease ahead) and one parked long
        schedule, now, lease = RetrySchedule(), time.time(), 60.0
        claimed, waiting = Envelope({"event_id": "a"}), Envelope({"event_id": "b"})
        schedule.park(claimed, now - 1)
        schedule.park(waiting, now + 3600)
        [taken] = schedule.claim_due(now, 10, lease)

        # when both are brought forward, and one that is gone already
        gone = taken.replace('"a"', '"gone"')
        members = [member for member, _, _ in schedule.entries()]
        moved = schedule.bring_forward([*members, gone], now, now + lease + 5)

        # then only the long-parked one moved; the claimed one keeps its lease; none came back
        dues = {e.event["event_id"]: due for _, e, due in schedule.entries() if e}
        assert moved == 1
        assert dues == {"a": pytest.approx(now + lease), "b": pytest.approx(now)}
