"""Reading what `kubectl kustomize` rendered: objects by kind and name, pods, containers, the
labels a selector picks and the ports a probe or a Service names.

An overlay's Secrets come from files the operator writes (secrets/*.env, absent from the
repository so that nothing renders with example values): `render` renders a copy of deploy/k8s
in which each is written from its committed example, every empty value filled in."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.uses import DEPLOY

OVERLAYS = sorted(p.parent for p in (DEPLOY / "k8s" / "overlays").glob("*/kustomization.yaml"))
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "PodMonitor", "PrometheusRule"}
Docs = list[dict[str, Any]]


OPTIONAL = {"SENTRY_DSN"}
CA = "-----BEGIN CERTIFICATE-----\nMIIB (a test CA)\n-----END CERTIFICATE-----\n"


def kustomize(path: Path) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize path` (the test is skipped, saying so, where kubectl is missing)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomize overlays were not rendered")
    argv = [kubectl, "kustomize", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def render(overlay: Path, components: tuple[str, ...] = ()) -> Docs:
    """One overlay rendered, its secret files written from their examples (see above), with
    `components` (names under deploy/k8s/components) added; a list of objects."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "k8s"
        shutil.copytree(DEPLOY / "k8s", tree)
        target = tree / overlay.relative_to(DEPLOY / "k8s")
        for example in target.glob("secrets/*.example"):
            example.with_suffix("").write_text(_filled(example))
        if components:
            target = tree / "overlays" / "with-components"
            target.mkdir()
            listed = "".join(f"  - ../../components/{c}\n" for c in components)
            base = f"../{overlay.name}"
            (target / "kustomization.yaml").write_text(
                f"resources:\n  - {base}\ncomponents:\n{listed}"
            )
        done = kustomize(target)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _filled(example: Path) -> str:
    """An example secret file as an operator fills it: every empty value set (but the
    optional ones)."""
    if not example.name.endswith(".env.example"):
        return CA
    lines = []
    for line in example.read_text().splitlines():
        name, equals, value = line.partition("=")
        filled = not line.startswith("#") and equals and not value and name not in OPTIONAL
        lines.append(f"{line}{name.lower().replace('_', '')}0123456789abcdef" if filled else line)
    text = "\n".join(lines) + "\n"
    return text.replace(":PASSWORD@", ":password0123456789abcdef@")


def one(docs: Docs, kind: str, name_ends: str = "") -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_ends)]
    return found


def pod_spec(docs: Docs, deployment: str) -> dict[str, Any]:
    """The pod template's spec of the Deployment whose name ends with `deployment`."""
    spec: dict[str, Any] = one(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def container_of(docs: Docs, deployment: str) -> dict[str, Any]:
    """The relay's container (the image's) of the Deployment whose name ends with
    `deployment` (Flower's pod has its authenticating proxy besides)."""
    [found] = [c for c in pod_spec(docs, deployment)["containers"] if is_relay(c)]
    return dict(found)


def is_relay(container: dict[str, Any]) -> bool:
    return "delivery-relay" in str(container["image"])


def env_from(docs: Docs, container: dict[str, Any]) -> dict[str, str]:
    """The variables a container is given by its envFrom ConfigMaps and Secrets and its env
    entries (values, and keys of Secrets), decoded."""
    found: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else (
                "Secret",
                source["secretRef"],
            )
        )
        found.update(data_of(one_named(docs, kind, ref["name"])))
    for entry in container.get("env", []):
        if "value" in entry:
            found[entry["name"]] = entry["value"]
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["secretKeyRef"]
            found[entry["name"]] = data_of(one_named(docs, "Secret", ref["name"]))[ref["key"]]
    return found


def one_named(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def data_of(doc: dict[str, Any]) -> dict[str, str]:
    """A ConfigMap's or a Secret's data (a Secret's decoded)."""
    data: dict[str, str] = doc.get("data", {})
    if doc["kind"] == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in data.items()}
    return dict(data)


def relay_env(docs: Docs) -> dict[str, str]:
    """The relay-env ConfigMap's data (tuning variables every relay container reads)."""
    [found] = [d for d in docs if d["kind"] == "ConfigMap" and "relay-env" in d["metadata"]["name"]]
    data: dict[str, str] = found["data"]
    return data


def secret_data(docs: Docs, name: str) -> dict[str, str]:
    """The values of the Secret whose name holds `name` (e.g. "relay-worker-secrets")."""
    [found] = [d for d in docs if d["kind"] == "Secret" and name in d["metadata"]["name"]]
    return data_of(found)


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
    numbers = [p["containerPort"] for p in container.get("ports", []) if p["name"] == port]
    return int(numbers[0]) if numbers else 0
