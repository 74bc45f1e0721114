"""What a cluster would ignore silently or apply wrongly: monitors without the label Prometheus
selects by, a dashboard where Grafana's sidecar does not look, KEDA reading another Redis
database than the workers, Sentinel triggers KEDA does not know, example secrets applied."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.deploy.kube import OVERLAYS, Docs, kustomize, one, one_named, render
from tests.deploy.uses import DEPLOY

pytestmark = pytest.mark.timeout(120)
EXAMPLE = DEPLOY / "k8s" / "overlays" / "example"
# The redis-sentinel trigger's metadata and authentication parameters KEDA documents
# (keda.sh, "Redis Lists (supports Redis Sentinel)").
SENTINEL_METADATA = {
    "addresses",
    "hosts",
    "ports",
    "sentinelMaster",
    "listName",
    "listLength",
    "activationListLength",
    "databaseIndex",
    "enableTLS",
    "unsafeSsl",
}
SENTINEL_AUTH = {"username", "password", "sentinelUsername", "sentinelPassword"}


def test_the_monitors_and_rules_carry_the_label_prometheus_selects_by(rendered: Docs) -> None:
    monitoring = [d for d in rendered if d["apiVersion"].startswith("monitoring.coreos.com/")]

    assert {d["kind"] for d in monitoring} == {"PodMonitor", "PrometheusRule"}
    assert all(d["metadata"]["labels"].get("release") for d in monitoring)


def test_the_dashboard_is_where_grafanas_sidecar_looks_in_the_folder_it_names(
    rendered: Docs,
) -> None:
    [dashboard] = [d for d in rendered if "relay-grafana-dashboard" in d["metadata"]["name"]]
    others = [d for d in rendered if d is not dashboard and "namespace" in d["metadata"]]

    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"]["grafana_folder"]
    # Grafana's namespace (the sidecar of kube-prometheus-stack watches its own), while
    # everything else stays in the relay's
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert {d["metadata"]["namespace"] for d in others} == {"relay"}


def _worker_redis_url() -> str:
    """REDIS_URL as the example's workers' secret file (its committed example) writes it."""
    lines = (EXAMPLE / "secrets" / "worker.env.example").read_text().splitlines()
    [url] = [line.split("=", 1)[1] for line in lines if line.startswith("REDIS_URL=")]
    return url


def test_keda_reads_the_server_and_database_the_workers_use(rendered: Docs) -> None:
    # given the workers' Redis URL and the ScaledObject's triggers
    url = urlsplit(_worker_redis_url())
    triggers = one(rendered, "ScaledObject")["spec"]["triggers"]

    # then every trigger reads that server, that database, over TLS when the URL does
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert metadata["address"] == f"{url.hostname}:{url.port}"
        assert metadata["databaseIndex"] == url.path.strip("/")
        assert metadata.get("enableTLS") == ("true" if url.scheme == "rediss" else None)


def test_the_example_reaches_redis_over_tls_with_a_ca_it_is_given(rendered: Docs) -> None:
    url = urlsplit(_worker_redis_url())
    query = parse_qs(url.query)
    ca = query["ssl_ca_certs"][0]
    pod = one(rendered, "Deployment", "relay-worker")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert url.scheme == "rediss" and query["ssl_cert_reqs"] == ["required"]
    assert url.username == "relay-worker"  # its own ACL user
    [name] = [n for n, path in mounts.items() if ca.startswith(path + "/")]
    secret = volumes[name]["secret"]["secretName"]
    assert ca.rsplit("/", 1)[1] in one_named(rendered, "Secret", secret)["data"]


def test_the_sentinel_component_makes_triggers_keda_knows() -> None:
    # given the example with the redis-sentinel component
    docs = render(EXAMPLE, components=("redis-sentinel",))
    plain = render(EXAMPLE)
    triggers = one(docs, "ScaledObject")["spec"]["triggers"]
    auth = one(docs, "TriggerAuthentication")["spec"]["secretTargetRef"]

    # then each is a redis-sentinel trigger with KEDA's parameters, on the same keys
    assert {t["type"] for t in triggers} == {"redis-sentinel"}
    for trigger, before in zip(
        triggers, one(plain, "ScaledObject")["spec"]["triggers"], strict=True
    ):
        metadata = trigger["metadata"]
        assert set(metadata) <= SENTINEL_METADATA, set(metadata) - SENTINEL_METADATA
        assert {"addresses", "sentinelMaster", "listName", "listLength"} <= set(metadata)
        assert metadata["listName"] == before["metadata"]["listName"]
        assert all(":" in a for a in metadata["addresses"].split(","))
    assert {r["parameter"] for r in auth} <= SENTINEL_AUTH
    assert "sentinelPassword" in {r["parameter"] for r in auth}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_an_overlay_does_not_render_until_its_secrets_are_written(overlay: Path) -> None:
    # given the overlay as committed: examples only, no secrets/*.env
    examples = sorted(overlay.glob("secrets/*.example"))

    # when it is rendered as it is
    done = kustomize(overlay)

    # then kustomize refuses, naming a file the operator must write
    assert examples and done.returncode != 0
    assert "secrets/" in done.stderr and "no such file" in done.stderr
    for example in examples:
        text = example.read_text()
        assert "change-me" not in text.lower()
