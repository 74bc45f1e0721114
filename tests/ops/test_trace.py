"""`relay trace EVENT_ID` against a real Redis and worker: where one event is."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import CONFIG, Relay, event, wait_for
from worker.dev.sandbox import Fault, Sandbox
from worker.settings import get_settings
from worker.stores.retries import RetrySchedule

pytestmark = pytest.mark.timeout(120)
WHOLE_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"  # no time cut short


def _trace(relay: Relay, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    shown = relay.cli("trace", *args, "--json")
    found = json.loads(shown.stdout)["found"] if shown.stdout.strip() else []
    return shown.returncode, found, relay.cli("trace", *args).stdout


def test_trace_tells_delivered_parked_dead_and_waiting_apart(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given one event delivered, one parked behind a 503, one refused, and one not taken yet
    sandbox.add_fault(Fault(api="medallia", status=503, times=0, retry_after="60", match="m-park"))
    sandbox.add_fault(Fault(api="medallia", status=400, times=0, match="m-refuse"))
    relay.start_worker()
    relay.push(event("md", "delivered", "m-ok", event_id="ev-ok"))
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the delivery")
    relay.push(event("md", "delivered", "m-park", event_id="ev-park"))
    relay.push(event("md", "delivered", "m-refuse", event_id="ev-refuse"))
    wait_for(
        lambda: relay.retries_waiting() == 1 and len(relay.dead_letters()) == 1, 30, "outcomes"
    )
    relay.stop_all()
    relay.push(event("md", "read", "m-ok", event_id="ev-later"))

    # when the operator traces each
    ok, park, refuse, later = (
        _trace(relay, e) for e in ("ev-ok", "ev-park", "ev-refuse", "ev-later")
    )
    missing = relay.cli("trace", "ev-never")

    # then each is found where it is, with when and why
    assert ok[0] == 0 and [(s["where"], s["target"]) for s in ok[1]] == [("delivered", "md")]
    assert ok[1][0]["message_ids"] == ["m-ok"]
    assert re.search(rf"^delivered at {WHOLE_TIME} for md: message id m-ok$", ok[2], re.M)
    wheres = {s["where"] for s in park[1]}
    assert "parked" in wheres and "503" in park[2] and "parked for a retry until" in park[2]
    [letter] = relay.dead_letters()
    assert [s["where"] for s in refuse[1]] == ["dead letter"] and letter.id in refuse[2]
    assert re.search(
        rf"^dead letter for md: {letter.id} \(rejected\), failed at {WHOLE_TIME}", refuse[2]
    )
    assert [s["where"] for s in later[1]] == ["inbox"]
    assert missing.returncode == 1 and "no trace of ev-never" in missing.stderr


def test_trace_finds_an_event_being_delivered(relay: Relay, sandbox: Sandbox) -> None:
    # given a target answering after four seconds, and an event on its way to it
    sandbox.add_fault(Fault(api="medallia", delay=4.0, times=1, match="m-slow"))
    relay.start_worker()
    relay.push(event("md", "sent", "m-slow", event_id="ev-slow"))
    wait_for(lambda: relay.waiting() == 0, 30, "a worker to take it")

    # when the operator traces it meanwhile, and after
    during = _trace(relay, "ev-slow")[1]
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the delivery")
    after = _trace(relay, "ev-slow", "--target", "md", "--message-id", "m-slow")[1]

    # then it was in flight in a worker's lane with its claim held, then delivered
    assert {s["where"] for s in during} == {"in flight", "claimed"}
    assert any("lane" in s["detail"] for s in during)
    assert [s["where"] for s in after] == ["delivered"]


def test_a_deferral_shows_why_in_the_trace(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a Salesforce target limited to a request every five seconds (so deferrals
    # stay parked long enough to be traced), a one-second task budget,
    # and twenty failures for it at once (each its own request)
    config = CONFIG.replace(
        'authorization_context = "Partner1_ChannelDefinition1"',
        'authorization_context = "Partner1_ChannelDefinition1"\nrate_limit = 0.2',
    )
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, config=config)
    relay.env["RELAY_TASK_BUDGET"] = "1"
    try:
        relay.start_worker()
        relay.push(*(event("sf", "failed", event_id=f"ev-{i}") for i in range(20)))
        wait_for(lambda: relay.retries_waiting() >= 5, 30, "deferrals")

        # when the operator traces the events parked now, the last due first (a trace takes
        # a CLI start; tracing all twenty in turn let the deferrals fall due and go out first)
        parked_now = sorted(RetrySchedule().iter(), key=lambda entry: -entry[1])
        ids = [envelope.event["event_id"] for envelope, _ in parked_now if envelope][:5]
        traced = [_trace(relay, event_id) for event_id in ids]
    finally:
        relay.stop_all()
        get_settings.cache_clear()

    # then the parked ones say they were held back by the rate limit, unsent
    parked = [s["why"] for _, found, _ in traced for s in found if s["where"] == "parked"]
    assert parked and all("deferred (rate limit reached)" in text for text in parked), parked
