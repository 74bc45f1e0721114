"""A per-target rate limit holds across workers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import CONFIG, Relay, event
from worker.dev.sandbox import Sandbox
from worker.settings import get_settings

RATE = 20.0
EVENTS = 120


@pytest.fixture
def limited_relay(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    config = CONFIG.replace(
        'authorization_context = "Partner1_ChannelDefinition1"',
        f'authorization_context = "Partner1_ChannelDefinition1"\nrate_limit = {RATE}',
    )
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, config=config)
    yield relay
    relay.stop_all()
    get_settings.cache_clear()


@pytest.mark.timeout(120)
def test_two_workers_together_stay_under_the_targets_rate(
    limited_relay: Relay, sandbox: Sandbox, figures
) -> None:
    relay = limited_relay
    # given two workers and a Salesforce target limited to 20 requests a second
    relay.start_worker("a")
    relay.start_worker("b")

    # when 120 failures are pushed at once (each its own request: interactions travel alone)
    started = time.monotonic()
    relay.push(*(event("sf", "failed") for _ in range(EVENTS)))
    relay.wait_settled(EVENTS, timeout=60)
    seconds = time.monotonic() - started

    # then no second saw more than the rate (plus the one-second burst at the start)
    times = sorted(r["time"] for r in sandbox.requests() if r["api"] == "salesforce")
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    steady = [
        sum(1 for t in times if start <= t < start + 1.0)
        for start in times
        if start >= times[0] + 1.5
    ]
    figures(
        events=EVENTS,
        seconds=round(seconds, 1),
        busiest_second=busiest,
        busiest_steady_second=max(steady, default=0),
        rate_limit=RATE,
    )
    assert len(times) == EVENTS
    assert busiest <= 2 * RATE + 2
    assert max(steady, default=0) <= RATE + 2
    assert times[-1] - times[0] >= (EVENTS - 2 * RATE) / RATE - 0.5
