"""Who may reach what, as the rendered NetworkPolicies say it (evaluated offline, tests.deploy
.netpol): each flow the relay needs gets through, every other is refused. Before these policies
any pod reached the ingress's POST /v1/correlations, the workers' metrics and Flower."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.kube import Docs, one
from tests.deploy.netpol import Endpoint, address, allowed, pod

pytestmark = pytest.mark.timeout(60)
NS = "relay"
NAME = "app.kubernetes.io/name"
CONTROLLER = pod("ingress-nginx", {NAME: "ingress-nginx"})
PROMETHEUS = pod("monitoring", {NAME: "prometheus"})
KEDA = pod("keda", {"app": "keda-operator"})
DNS = pod("kube-system", {"k8s-app": "kube-dns"})
REDIS = pod(NS, {NAME: "redis"})
SENDER = pod("crm", {"delivery-relay/correlations": "true"})  # may call /v1/correlations
STRANGER = pod("default", {"app": "anything"})  # any other pod of the cluster
NEIGHBOUR = pod(NS, {"app": "debug"})  # an unlabelled pod in the relay's namespace
TARGET = address("203.0.113.10")  # a target on the internet
METADATA = address("169.254.169.254")  # the cloud's instance metadata (credentials)


def relay_pod(rendered: Docs, deployment: str) -> Endpoint:
    """A pod of the rendered Deployment, with the labels its template gives it."""
    labels: dict[str, Any] = one(rendered, "Deployment", deployment)["spec"]["template"]["metadata"]
    return Endpoint(NS, dict(labels["labels"]))


FLOWS = [
    # (from, to, port, allowed): names resolve to the relay's pods, others are above
    ("controller", "ingress", 8080, True),
    ("prometheus", "ingress", 8080, True),
    ("sender", "ingress", 8080, True),
    ("stranger", "ingress", 8080, False),
    ("neighbour", "ingress", 8080, False),
    ("controller", "ingress", 9808, False),
    ("prometheus", "worker", 9808, True),
    ("stranger", "worker", 9808, False),
    ("ingress", "worker", 9808, False),
    ("controller", "flower", 4180, True),
    ("stranger", "flower", 4180, False),
    ("neighbour", "flower", 4180, False),
    ("controller", "flower", 5555, False),
    ("prometheus", "flower", 4180, False),
    ("worker", "redis", 6380, True),
    ("ingress", "redis", 6380, True),
    ("flower", "redis", 6380, True),
    ("keda", "redis", 6380, True),
    ("stranger", "redis", 6380, False),
    ("neighbour", "redis", 6379, False),
    ("worker", "target", 443, True),
    ("worker", "target", 80, False),
    ("worker", "metadata", 80, False),
    ("worker", "metadata", 443, False),
    ("flower", "target", 443, True),
    ("ingress", "target", 443, False),  # the internet-facing pod never calls out
    ("ingress", "worker", 9808, False),
    ("ingress", "flower", 4180, False),
    ("ingress", "stranger", 8080, False),
    ("worker", "dns", 53, True),
    ("ingress", "dns", 53, True),
]


def _endpoint(rendered: Docs, name: str) -> Endpoint:
    fixed = {
        "controller": CONTROLLER,
        "prometheus": PROMETHEUS,
        "keda": KEDA,
        "dns": DNS,
        "redis": REDIS,
        "sender": SENDER,
        "stranger": STRANGER,
        "neighbour": NEIGHBOUR,
        "target": TARGET,
        "metadata": METADATA,
    }
    return fixed.get(name) or relay_pod(rendered, f"relay-{name}")


@pytest.mark.parametrize(("source", "destination", "port", "expected"), FLOWS)
def test_each_part_reaches_what_it_needs_and_nothing_else(
    rendered: Docs, source: str, destination: str, port: int, expected: bool
) -> None:
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    protocol = "UDP" if port == 53 else "TCP"

    verdict = allowed(
        policies,
        NS,
        _endpoint(rendered, source),
        _endpoint(rendered, destination),
        port,
        protocol,
    )

    assert verdict is expected


def test_everything_in_the_namespace_is_denied_unless_allowed(rendered: Docs) -> None:
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    [deny] = [p for p in policies if p["metadata"]["name"].endswith("relay-default-deny")]

    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    assert all(p["metadata"]["namespace"] == NS for p in policies)
