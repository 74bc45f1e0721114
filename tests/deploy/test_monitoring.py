"""The alert rules and the Grafana dashboard ask only for metrics the relay exports."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.deploy.uses import DEPLOY
from tests.support.harness import own_key_prefix
from worker.observe.metrics import ATTEMPTS, DELIVERIES, REQUEST_SECONDS
from worker.ops.gauges import StateCollector

pytestmark = pytest.mark.timeout(30)
BASE = DEPLOY / "k8s" / "base"


@pytest.fixture
def exported(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every series name a worker's /metrics serves: the relay's counters and histograms, and
    the families the state collector reads from Redis (prometheus_client's suffixes included)."""
    with own_key_prefix(redis_url, monkeypatch, "metrics"):
        collected = list(StateCollector().collect())
    names = {f"{DELIVERIES._name}_total"}
    for histogram in (REQUEST_SECONDS, ATTEMPTS):
        names |= {f"{histogram._name}_{suffix}" for suffix in ("bucket", "count", "sum")}
    return names | {f.name + ("_total" if f.type == "counter" else "") for f in collected}


def families(names: set[str]) -> set[str]:
    return {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}


def used(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in re.findall(r"\brelay_[a-z_]+", expr)}


def test_every_alert_reads_a_metric_the_relay_exports(exported: set[str]) -> None:
    rules = [
        d
        for d in yaml.safe_load_all((BASE / "monitoring.yaml").read_text())
        if d["kind"] == "PrometheusRule"
    ]
    exprs = [r["expr"] for d in rules for g in d["spec"]["groups"] for r in g["rules"]]
    alerts = {r["alert"] for d in rules for g in d["spec"]["groups"] for r in g["rules"]}

    assert used(exprs) and used(exprs) <= exported
    assert {
        "RelayDeadLettersGrowing",
        "RelayRetriesWaitingGrowing",
        "RelayNoWorkerConsuming",
    } <= alerts
    assert any("inbox" in a.lower() for a in alerts)


def test_every_dashboard_panel_reads_a_metric_the_relay_exports(exported: set[str]) -> None:
    dashboard = json.loads((BASE / "dashboards" / "relay.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]

    assert used(exprs) <= exported
    assert families(used(exprs)) == families(exported)  # every metric shown
