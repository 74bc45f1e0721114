"""Cells in deploy/: the kustomize component rendered twice by the two-cell example (each cell
its workers, scaler, disruption budget and Redis, no two cells picking each other's pods), the
component kept in step with the base's worker, and compose's cells profile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.kube import CUSTOM_KINDS, Docs, env_from, render
from tests.deploy.uses import DEPLOY, interpolate
from worker.settings import load_settings
from worker.settings.cells import cell_address, cell_index, cell_urls

pytestmark = pytest.mark.timeout(120)
EXAMPLE = DEPLOY / "k8s" / "cells-example"


@pytest.fixture(scope="module")
def rendered() -> Docs:
    return render(EXAMPLE)


def named(docs: Docs, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_the_built_in_kinds_pass_kubernetes_validate_strict(rendered: Docs, tmp_path: Path) -> None:
    built_in = [d for d in rendered if d["kind"] not in CUSTOM_KINDS]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(built_in))
    validator = str(Path(sys.executable).parent / "kubernetes-validate")
    done = subprocess.run(
        [validator, "--strict", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_cell_has_its_workers_scaler_and_budget_and_the_one_redis_ones_are_gone(
    rendered: Docs,
) -> None:
    cells = ["acme-relay-worker-cell0", "acme-relay-worker-cell1"]
    workers = [n for n in named(rendered, "Deployment") if "worker" in n]
    assert sorted(workers) == cells
    assert sorted(named(rendered, "PodDisruptionBudget")) == ["acme-relay-ingress", *cells]
    scaled = named(rendered, "ScaledObject")
    assert sorted(scaled) == cells
    for name, scaler in scaled.items():
        assert scaler["spec"]["scaleTargetRef"]["name"] == name
        auth = {t["authenticationRef"]["name"] for t in scaler["spec"]["triggers"]}
        assert auth == {name.replace("worker", "redis")}
        assert auth <= set(named(rendered, "TriggerAuthentication"))


def test_no_two_cells_pick_each_others_pods(rendered: Docs) -> None:
    workers = {n: d for n, d in named(rendered, "Deployment").items() if "worker" in n}
    for owner in [*workers.values(), *named(rendered, "PodDisruptionBudget").values()]:
        picks = owner["spec"]["selector"]["matchLabels"]
        chosen = [
            n
            for n, d in workers.items()
            if picks.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(chosen) <= 1, (owner["metadata"]["name"], chosen)


def test_each_cells_workers_serve_their_cell_and_keda_reads_it(rendered: Docs) -> None:
    ingress = named(rendered, "Deployment")["acme-relay-ingress"]
    lists = {
        cell_urls(
            env_from(rendered, ingress["spec"]["template"]["spec"]["containers"][0])["RELAY_CELLS"]
        )[1]
    }
    for cell in (0, 1):
        worker = named(rendered, "Deployment")[f"acme-relay-worker-cell{cell}"]
        env = env_from(rendered, worker["spec"]["template"]["spec"]["containers"][0])
        settings = load_settings(env)  # accepted as a worker's settings
        cells = cell_urls(settings.cells)
        assert cell_index(cells, settings.redis_url) == cell
        lists.add(cells[1])
        url = urlsplit(env["REDIS_URL"])
        scaler = named(rendered, "ScaledObject")[f"acme-relay-worker-cell{cell}"]
        for trigger in scaler["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert meta["address"] == f"{url.hostname}:{url.port}"
            assert meta["databaseIndex"] == url.path.strip("/")
        labels = worker["spec"]["template"]["metadata"]["labels"]
        assert labels["relay.example.com/cell"] == str(cell)
    assert len({cell_address(u) for u in lists}) == 1  # the same cells everywhere


def test_the_worker_monitor_labels_series_by_cell(rendered: Docs) -> None:
    monitor = named(rendered, "PodMonitor")["acme-relay-worker"]
    assert monitor["spec"]["podTargetLabels"] == ["relay.example.com/cell"]


def test_the_component_keeps_the_base_worker_but_for_its_secrets() -> None:
    base = list(yaml.safe_load_all((DEPLOY / "k8s" / "base" / "worker.yaml").read_text()))
    cell = list(
        yaml.safe_load_all((DEPLOY / "k8s" / "components" / "cell" / "worker.yaml").read_text())
    )
    pdb = yaml.safe_load((DEPLOY / "k8s" / "base" / "worker-pdb.yaml").read_text())
    assert cell[1] == pdb
    base_pod, cell_pod = (d["spec"]["template"]["spec"] for d in (base[0], cell[0]))
    base_env = base_pod["containers"][0].pop("envFrom")
    cell_env = cell_pod["containers"][0].pop("envFrom")
    assert cell_env[: len(base_env)] == base_env
    assert [e["secretRef"]["name"] for e in cell_env[len(base_env) :]] == [
        "relay-cells",
        "relay-cell",
    ]
    assert cell[0] == base[0]
    keda = (DEPLOY / "k8s" / "base" / "keda.yaml").read_text()
    cell_keda = (DEPLOY / "k8s" / "components" / "cell" / "keda.yaml").read_text()
    assert list(yaml.safe_load_all(cell_keda)) == list(yaml.safe_load_all(keda))


def test_compose_runs_a_second_cell_under_its_profile() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    redis, second = services["redis"], services["redis-cell1"]
    assert second["profiles"] == ["cells"] and second["command"] == redis["command"]
    assert any(v.endswith(":/data") and "cell1" in v for v in second["volumes"])
    worker = services["worker-cell1"]
    assert worker["profiles"] == ["cells"] and worker["command"] == services["worker"]["command"]
    url = urlsplit(interpolate(worker["environment"]["REDIS_URL"]))
    assert (url.hostname, url.username) == ("redis-cell1", "relay-worker")
    assert "redis-cell1" in worker["depends_on"]
    for name in ("worker", "ingress", "ops"):
        assert services[name]["environment"]["RELAY_CELLS"].startswith("${")
    flower = services["flower-cell1"]
    assert "@redis-cell1:" in flower["environment"]["REDIS_URL"]
    assert flower["ports"] == ["127.0.0.1:5556:5555"]
    assert "redis-cell1-data" in yaml.safe_load((DEPLOY / "compose.yaml").read_text())["volumes"]


def test_the_two_cells_are_the_example_but_for_the_cells(rendered: Docs) -> None:
    # given the example deployment rendered alone
    example = render(DEPLOY / "k8s" / "overlays" / "example")
    mine, theirs = named(rendered, "Deployment"), named(example, "Deployment")
    # then Flower is the same, the ingress only reads RELAY_CELLS besides
    assert mine["acme-relay-flower"] == theirs["acme-relay-flower"]
    ingress = mine["acme-relay-ingress"]["spec"]["template"]["spec"]["containers"][0]
    their_ingress = theirs["acme-relay-ingress"]["spec"]["template"]["spec"]["containers"][0]
    assert ingress.pop("envFrom")[:-1] == their_ingress.pop("envFrom")
    assert ingress == their_ingress
    # and each cell's worker container is the example's worker but for its Secrets
    worker = theirs["acme-relay-worker"]["spec"]["template"]["spec"]["containers"][0]
    worker.pop("envFrom")
    for cell in (0, 1):
        container = mine[f"acme-relay-worker-cell{cell}"]["spec"]["template"]["spec"]["containers"][
            0
        ]
        container.pop("envFrom")
        assert container == worker
