"""The alert rules and the Grafana dashboard ask only for metrics the relay exports, with label
values its code gives them."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from tests.deploy.uses import DEPLOY, ROOT
from tests.support.harness import own_key_prefix
from worker.observe import metrics
from worker.ops.gauges import StateCollector

pytestmark = pytest.mark.timeout(30)
BASE = DEPLOY / "k8s" / "base"
# The series prometheus_client serves for one metric of each type.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture
def exported(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every series name the relay's /metrics serve: the workers' and the ingress's counters
    and histograms (worker.observe.metrics), and the families the workers' state collector reads
    from Redis (prometheus_client's suffixes included)."""
    with own_key_prefix(redis_url, monkeypatch, "metrics"):
        collected = list(StateCollector().collect())
    own = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    names = {m._name + suffix for m in own for suffix in SUFFIXES[m._type]}
    return names | {f.name + ("_total" if f.type == "counter" else "") for f in collected}


def families(names: set[str]) -> set[str]:
    return {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}


def used(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in re.findall(r"\brelay_[a-z_]+", expr)}


def alert_rules() -> list[dict[str, str]]:
    documents = yaml.safe_load_all((BASE / "monitoring.yaml").read_text())
    rules = [d for d in documents if d["kind"] == "PrometheusRule"]
    return [r for d in rules for g in d["spec"]["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((BASE / "dashboards" / "relay.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def ingress_outcomes() -> set[str]:
    """The outcomes the ingress counts a request under: what its handlers return."""
    found: set[str] = set()
    for path in (ROOT / "worker" / "ingress").glob("*.py"):
        for line in path.read_text().splitlines():
            if line.strip().startswith("return "):
                found |= set(re.findall(r'(?<!\[)"([a-z_]+)"(?!\])', line))  # not subscripts
    return found


def test_every_alert_reads_a_metric_the_relay_exports(exported: set[str]) -> None:
    exprs = [r["expr"] for r in alert_rules()]
    alerts = {r["alert"] for r in alert_rules()}

    assert used(exprs) and used(exprs) <= exported
    assert {
        "RelayDeadLettersGrowing",
        "RelayRetriesWaitingGrowing",
        "RelayNoWorkerConsuming",
        "RelayIngressRefusingCallbacks",
        "RelayIngressUnavailable",
        "RelayIngressSlow",
    } <= alerts
    assert any("inbox" in a.lower() for a in alerts)


def test_every_dashboard_panel_reads_a_metric_the_relay_exports(exported: set[str]) -> None:
    exprs = dashboard_exprs()

    assert used(exprs) <= exported
    assert families(used(exprs)) == families(exported)  # every metric shown


def test_ingress_outcomes_asked_for_are_ones_the_ingress_counts() -> None:
    # given every outcome an alert or a panel selects the ingress's requests by
    exprs = [r["expr"] for r in alert_rules()] + dashboard_exprs()
    selectors = [
        s for e in exprs for s in re.findall(r"relay_ingress_requests_total\{([^}]*)\}", e)
    ]
    asked = {
        value
        for selector in selectors
        for pattern in re.findall(r'outcome[!=]~?"([^"]*)"', selector)
        for value in pattern.split("|")
    }

    # then the ingress's handlers return each of them (a typo would match nothing, silently)
    assert {"refused", "unavailable", "health"} <= asked
    assert asked <= ingress_outcomes(), ingress_outcomes()
