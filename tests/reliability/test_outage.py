"""A long target outage: events wait in Redis (not in workers), the target is spared by the
circuit breaker, other targets flow on, and everything is delivered after recovery."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import CONFIG, Relay, event, posted_ids, wait_for, worker_rss_mb
from worker.dev.sandbox import Fault, Sandbox
from worker.settings import get_settings

PARKED = 10_000
# Time compressed: retries every fraction of a second, a circuit that re-probes every 3-6 s.
OUTAGE_CONFIG = CONFIG.replace(
    "base_delay = 0.2\nmax_delay = 5.0\nmax_attempts = 4\nmax_age = 120.0",
    "base_delay = 0.2\nmax_delay = 2.0\nmax_attempts = 1000\nmax_age = 900.0",
)


@pytest.fixture
def outage_relay(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, config=OUTAGE_CONFIG)
    relay.env.update(
        RELAY_BREAKER_THRESHOLD="10", RELAY_BREAKER_COOLDOWN="3", RELAY_BREAKER_MAX_COOLDOWN="6"
    )
    yield relay
    relay.stop_all()
    get_settings.cache_clear()


def _md_requests(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests() if r["api"] == "medallia")


def _through_the_outage(
    relay: Relay, sandbox: Sandbox
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A worker warmed up on the failing target, then PARKED more events that park, and
    another target served meanwhile: the events parked, and what was measured on the way."""
    worker = relay.start_worker("outage", concurrency=8)
    warm = [event("md", "delivered") for _ in range(200)]
    relay.push(*warm)
    wait_for(lambda: relay.waiting() >= 200, 60, "the warm-up events to park")
    measured: dict[str, Any] = {"rss_mb_before": worker_rss_mb(worker)}
    events = [event("md", "delivered") for _ in range(PARKED)]
    relay.push(*events)
    wait_for(lambda: relay.retries_waiting() >= PARKED + 200, 240, "all events to park")
    time.sleep(3)  # let the worker settle after the burst
    measured["rss_mb_with_all_parked"] = worker_rss_mb(worker)
    measured["md_requests_while_parking"] = _md_requests(sandbox)
    started = time.monotonic()
    others = [event("sf", "failed") for _ in range(50)]
    relay.push(*others)
    other_ids = {e["message_ids"][0] for e in others}
    wait_for(lambda: other_ids <= set(posted_ids(sandbox.requests())), 30, "the other target")
    measured["other_target_seconds"] = round(time.monotonic() - started, 1)
    time.sleep(8)  # a few more breaker rounds
    measured["rss_mb_8s_later"] = worker_rss_mb(worker)
    measured["md_requests_whole_outage"] = _md_requests(sandbox)
    return warm + events, measured


@pytest.mark.timeout(420)
def test_outage_parks_events_in_redis_spares_the_target_and_recovers(
    outage_relay: Relay, sandbox: Sandbox, figures
) -> None:
    relay = outage_relay
    # given a Medallia target that is down
    sandbox.add_fault(Fault(api="medallia", status=503, times=0))

    # when 10,000 events arrive during the outage, and 50 for another target
    parked, measured = _through_the_outage(relay, sandbox)

    # then another target is served at once, and the outage costs no dead letters
    assert relay.dead_letters() == []
    # Flat while they wait: the events are in Redis, not in the worker.
    rss_parked, rss_later = measured["rss_mb_with_all_parked"], measured["rss_mb_8s_later"]
    assert rss_later - rss_parked < max(5.0, 0.05 * rss_parked)
    assert measured["md_requests_whole_outage"] < 1000, "the circuit breaker spares the target"
    assert measured["other_target_seconds"] < 15

    # and when the target recovers, every parked event is delivered
    sandbox.clear_faults()
    recovered = time.monotonic()
    wanted = {m for e in parked for m in e["message_ids"]}
    # Poll the cheap counters: copying 10,000 recorded requests ten times a second would
    # starve the sandbox, which serves from this same process.
    wait_for(
        lambda: relay.counts("md").get("delivered", 0) >= len(wanted), 240, "every parked event"
    )
    posts = Counter(posted_ids(sandbox.requests()))
    figures(
        parked=len(wanted),
        **measured,
        redelivered_after_seconds=round(time.monotonic() - recovered, 1),
        lost=len(wanted - set(posts)),
        duplicate_posts=sum(n - 1 for n in posts.values()),
    )
    assert relay.dead_letters() == []
