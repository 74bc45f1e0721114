"""deploy/k8s's ingress, rendered offline: what points at what (Service, Ingress, autoscaler,
budget and monitors at the ingress's pods and ports), and the pod serving the way the code and
its probes expect (uvicorn's port, /healthz for readiness only, a shutdown within the grace).

Whether the command really serves those paths is tests/deploy/test_ingress_runs.py's part.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.kube import (
    Docs,
    container_of,
    deployments_selected,
    one,
    pod_spec,
    port_number,
    selector_of,
)
from tests.deploy.uses import uvicorn_params
from worker.ingress.app import RECEIPTS_PATH

pytestmark = pytest.mark.timeout(120)
# Every object that picks pods by labels, and the Deployment whose pods it means.
SELECTING = [
    ("Service", "relay-ingress", "relay-ingress"),
    ("Service", "relay-flower", "relay-flower"),
    ("PodDisruptionBudget", "relay-ingress", "relay-ingress"),
    ("PodDisruptionBudget", "relay-worker", "relay-worker"),
    ("PodMonitor", "relay-ingress", "relay-ingress"),
    ("PodMonitor", "relay-worker", "relay-worker"),
]

# The app's routes (worker/ingress/app.py): what providers and senders call, and what only the
# cluster (kubelet, Prometheus) should.
PUBLIC = (RECEIPTS_PATH + "some-source", "/v1/correlations")
PRIVATE = ("/healthz", "/metrics")


def prefix_matches(prefix: str, path: str) -> bool:
    """Kubernetes' pathType Prefix: element by element (/v1 matches /v1/x, not /v1x)."""
    elements = [e for e in prefix.split("/") if e]
    return path.split("/")[1 : len(elements) + 1] == elements


def ingress_container(docs: Docs) -> dict[str, Any]:
    return container_of(docs, "relay-ingress")


def probed_port(probe: dict[str, Any]) -> int | str:
    """The port an httpGet or tcpSocket probe knocks at."""
    port: int | str = (probe.get("httpGet") or probe["tcpSocket"])["port"]
    return port


def ports_named(doc: dict[str, Any]) -> list[int | str]:
    """The pod ports an object sends to: a Service's targetPorts, a PodMonitor's ports."""
    if doc["kind"] == "Service":
        return [p["targetPort"] for p in doc["spec"]["ports"]]
    if doc["kind"] == "PodMonitor":
        return [e["port"] for e in doc["spec"]["podMetricsEndpoints"]]
    return []


@pytest.mark.parametrize(("kind", "name", "deployment"), SELECTING)
def test_each_selector_picks_the_pods_of_its_deployment_and_their_ports(
    rendered: Docs, kind: str, name: str, deployment: str
) -> None:
    doc = one(rendered, kind, name)
    containers = one(rendered, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]

    assert deployments_selected(rendered, selector_of(doc)) == [
        one(rendered, "Deployment", deployment)["metadata"]["name"]
    ]
    for port in ports_named(doc):
        numbers = [port_number(c, port) for c in containers if "ports" in c]
        assert any(n > 0 for n in numbers), f"{name} sends to {port!r}, which pods lack"


def test_no_object_selects_pods_without_being_checked_above(rendered: Docs) -> None:
    selecting = {
        (d["kind"], d["metadata"]["name"])
        for d in rendered
        if d["kind"] in {"Service", "PodDisruptionBudget", "PodMonitor"}
    }
    checked = {(kind, one(rendered, kind, name)["metadata"]["name"]) for kind, name, _ in SELECTING}

    assert selecting == checked


def test_the_ingress_routes_providers_paths_to_the_service_over_tls(rendered: Docs) -> None:
    route = one(rendered, "Ingress", "relay-ingress")
    service = one(rendered, "Service", "relay-ingress")
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    service_ports |= {p["port"] for p in service["spec"]["ports"]}
    rules = route["spec"]["rules"]
    paths = [path for rule in rules for path in rule["http"]["paths"]]

    assert route["apiVersion"] == "networking.k8s.io/v1"
    assert paths and all(rule.get("host") for rule in rules), "an overlay sets the host"
    assert {rule["host"] for rule in rules} <= {
        host for tls in route["spec"]["tls"] for host in tls["hosts"]
    }
    assert all(tls["secretName"] for tls in route["spec"]["tls"])
    for path in paths:
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"].get("name", backend["port"].get("number")) in service_ports
        # Providers reach their callbacks; nobody outside reaches /metrics or /healthz.
        assert path["pathType"] == "Prefix"
        assert any(prefix_matches(path["path"], route) for route in PUBLIC), path
        assert not any(prefix_matches(path["path"], route) for route in PRIVATE), path


def test_the_autoscaler_scales_the_ingress_deployment_on_its_cpu_request(rendered: Docs) -> None:
    scaler = one(rendered, "HorizontalPodAutoscaler", "relay-ingress")
    deployment = one(rendered, "Deployment", "relay-ingress")
    [metric] = scaler["spec"]["metrics"]

    assert scaler["apiVersion"] == "autoscaling/v2"
    assert scaler["spec"]["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 2 <= scaler["spec"]["minReplicas"] < scaler["spec"]["maxReplicas"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert "cpu" in ingress_container(rendered)["resources"]["requests"]  # utilization of it
    assert "replicas" not in deployment["spec"]  # else each `kubectl apply` resets the count


def test_the_ingress_pod_serves_its_probes_on_uvicorns_port(rendered: Docs) -> None:
    found = ingress_container(rendered)
    params = uvicorn_params(found["args"][1:])
    ready, alive = found["readinessProbe"], found["livenessProbe"]
    env = {e["name"] for e in found.get("env", [])}

    assert found["args"][0] == "uvicorn" and params["access_log"] is False  # tokens in queries
    assert port_number(found, "http") == params["port"] and params["host"] == "0.0.0.0"
    # Ready only while Redis answers; alive while the loop answers, whatever Redis does.
    assert ready["httpGet"]["path"] == "/healthz"
    assert port_number(found, probed_port(ready)) == params["port"]
    assert alive.get("httpGet", {}).get("path") != "/healthz"
    assert port_number(found, probed_port(alive)) == params["port"]
    # One process per pod: its /metrics is whole without PROMETHEUS_MULTIPROC_DIR.
    assert (params["workers"] or 1) == 1 and "PROMETHEUS_MULTIPROC_DIR" not in env


def test_the_ingress_stops_within_its_grace_period_and_spreads_over_nodes(
    rendered: Docs,
) -> None:
    pod = pod_spec(rendered, "relay-ingress")
    found = ingress_container(rendered)
    params = uvicorn_params(found["args"][1:])
    pre_stop = found["lifecycle"]["preStop"]["exec"]["command"]
    labels = one(rendered, "Deployment", "relay-ingress")["spec"]["template"]["metadata"]
    [spread] = pod["topologySpreadConstraints"]

    assert pre_stop[0] == "sleep"
    needed = int(pre_stop[1]) + params["timeout_graceful_shutdown"]
    assert pod["terminationGracePeriodSeconds"] > needed
    assert spread["labelSelector"]["matchLabels"].items() <= labels["labels"].items()
