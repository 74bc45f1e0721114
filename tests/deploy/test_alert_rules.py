"""The inbox alert fires when the inbox does not drain, and not under sustained load the fleet
keeps up with, evaluated over simulated scrapes with tests.deploy.promql (as Prometheus would:
subqueries, lookback, `for`). The rule read is the one deploy/k8s/base/monitoring.yaml ships."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import yaml

from tests.deploy.promql import Data, firing_times, parse
from tests.deploy.uses import DEPLOY

pytestmark = pytest.mark.timeout(60)
SCRAPE = 30.0
HOURS = 3
WORKERS = 2  # each worker's /metrics reports the fleet's inbox depth


def rule(name: str) -> dict[str, str]:
    documents = yaml.safe_load_all((DEPLOY / "k8s" / "base" / "monitoring.yaml").read_text())
    rules = [
        r
        for d in documents
        if d["kind"] == "PrometheusRule"
        for g in d["spec"]["groups"]
        for r in g["rules"]
    ]
    [found] = [r for r in rules if r.get("alert") == name]
    return found


def scrapes(depth: Callable[[float], float]) -> Data:
    times = [k * SCRAPE for k in range(int(HOURS * 3600 / SCRAPE))]
    series = [(t, float(max(0, round(depth(t))))) for t in times]
    return Data({"relay_inbox_depth": [series] * WORKERS})


def _seconds(text: str) -> float:
    return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


def fires(depth: Callable[[float], float]) -> list[float]:
    found = rule("RelayInboxNotDraining")
    return firing_times(found["expr"], _seconds(found["for"]), scrapes(depth), HOURS * 3600)


def _steady(seed: int) -> Callable[[float], float]:
    """Sustained load the fleet keeps up with: each scrape sees what arrived since the lanes'
    last take, a few hundred events, never zero."""
    rng = random.Random(seed)
    values: dict[float, float] = {}
    return lambda t: values.setdefault(t, rng.uniform(50, 600))


@pytest.mark.parametrize("seed", range(5))
def test_sustained_load_the_fleet_keeps_up_with_does_not_fire(seed: int) -> None:
    assert fires(_steady(seed)) == []


def test_an_inbox_nobody_takes_from_fires_within_twenty_five_minutes() -> None:
    # given a fleet keeping up for an hour, then every worker's feeder stopped at 3,600 s while
    # events keep arriving
    steady = _steady(7)

    def depth(t: float) -> float:
        return steady(t) if t < 3600 else 400 + (t - 3600) * 2

    # then the alert fires, and only after the stop
    fired = fires(depth)
    assert fired and 3600 < fired[0] <= 3600 + 25 * 60


def test_a_stuck_inbox_that_holds_still_fires() -> None:
    fired = fires(lambda t: 0 if t < 1800 else 1234)
    assert fired and 1800 < fired[0] <= 1800 + 25 * 60


def test_a_backlog_draining_after_an_outage_does_not_fire() -> None:
    # given 200,000 events waiting after an outage, taken at 150 a second until empty
    def depth(t: float) -> float:
        return 0 if t < 600 else max(0.0, 200_000 - (t - 600) * 150)

    assert fires(depth) == []


def test_an_inbox_that_is_mostly_empty_does_not_fire() -> None:
    assert fires(lambda t: 30 if int(t // SCRAPE) % 7 == 0 else 0) == []


def test_the_rule_is_critical_and_reads_only_exported_series() -> None:
    found = rule("RelayInboxNotDraining")
    parse(found["expr"])  # within what the evaluator (and these tests) cover

    assert found["labels"]["severity"] == "critical"
    assert "relay_inbox_depth" in found["expr"]
