"""Reading what `kubectl kustomize` rendered: objects by kind and name, pods, containers, the
labels a selector picks and the ports a probe or a Service names."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.uses import DEPLOY

OVERLAYS = sorted(p.parent for p in (DEPLOY / "k8s" / "overlays").glob("*/kustomization.yaml"))
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "PodMonitor", "PrometheusRule"}
Docs = list[dict[str, Any]]


def render(overlay: Path) -> Docs:
    """One overlay rendered by `kubectl kustomize`, as a list of objects (the test is skipped,
    saying so, where kubectl is missing)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomize overlays were not rendered")
    argv = [kubectl, "kustomize", str(overlay)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def one(docs: Docs, kind: str, name_ends: str = "") -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_ends)]
    return found


def pod_spec(docs: Docs, deployment: str) -> dict[str, Any]:
    """The pod template's spec of the Deployment whose name ends with `deployment`."""
    spec: dict[str, Any] = one(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def container_of(docs: Docs, deployment: str) -> dict[str, Any]:
    """The (only) container of the Deployment whose name ends with `deployment`."""
    [found] = pod_spec(docs, deployment)["containers"]
    return dict(found)


def relay_env(docs: Docs) -> dict[str, str]:
    """The relay-env ConfigMap's data (tuning variables every relay container reads)."""
    [found] = [d for d in docs if d["kind"] == "ConfigMap" and "relay-env" in d["metadata"]["name"]]
    data: dict[str, str] = found["data"]
    return data


def secret_data(docs: Docs) -> dict[str, str]:
    """The relay-secrets Secret's values, decoded."""
    data = one(docs, "Secret")["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def selector_of(doc: dict[str, Any]) -> dict[str, str]:
    """The labels an object picks pods by (a Service's selector, or spec.selector.matchLabels)."""
    selector = doc["spec"]["selector"]
    labels: dict[str, str] = selector if doc["kind"] == "Service" else selector["matchLabels"]
    return labels


def deployments_selected(docs: Docs, labels: dict[str, str]) -> list[str]:
    """The names of the Deployments whose pods carry every one of `labels`."""
    return [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "Deployment"
        and labels.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]


def port_number(container: dict[str, Any], port: int | str) -> int:
    """The container port a probe, Service or monitor means by `port` (a number or a name)."""
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)
