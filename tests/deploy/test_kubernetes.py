"""deploy/k8s offline: every overlay renders, validates against Kubernetes' schemas, and keeps the
invariants a cluster would only show by failing (names, Redis keys, commands, variables, probes).

No cluster: `kubectl kustomize` renders (skipped, saying so, where kubectl is missing) and
`kubernetes-validate --strict` checks the built-in kinds against the schemas it bundles. It has
no schema for KEDA's and the Prometheus Operator's kinds (ScaledObject, TriggerAuthentication,
PodMonitor, PrometheusRule); the tests below check what matters in those by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.kube import (
    CUSTOM_KINDS,
    Docs,
    container_of,
    data_of,
    is_relay,
    one,
    one_named,
    pod_spec,
    relay_env,
)
from tests.deploy.uses import (
    DEPLOY,
    argv_of,
    problems_with,
    secret_names_in_targets,
    unknown_variables,
)

pytestmark = pytest.mark.timeout(120)
DEPLOYMENTS = ["relay-worker", "relay-ingress", "relay-flower"]
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def test_the_built_in_kinds_pass_kubernetes_validate_strict(rendered: Docs, tmp_path: Path) -> None:
    # given the rendered objects Kubernetes itself defines
    built_in = [d for d in rendered if d["kind"] not in CUSTOM_KINDS]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(built_in))

    # when kubernetes-validate checks them strictly (unknown fields refused)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then every one passes, and the custom kinds are the only ones left to the tests below
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed ") == len(built_in), done.stdout
    assert {d["kind"] for d in rendered} >= CUSTOM_KINDS | {"Deployment", "PodDisruptionBudget"}


def test_the_scaled_object_scales_the_worker_deployment_by_its_rendered_name(
    rendered: Docs,
) -> None:
    scaled = one(rendered, "ScaledObject")
    auth = one(rendered, "TriggerAuthentication")

    assert (
        scaled["spec"]["scaleTargetRef"]["name"]
        == one(rendered, "Deployment", "relay-worker")["metadata"]["name"]
    )
    assert scaled["spec"]["minReplicaCount"] == 1  # the pump and the feeder live in workers
    assert {t["authenticationRef"]["name"] for t in scaled["spec"]["triggers"]} == {
        auth["metadata"]["name"]
    }
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert {"username", "password"} <= set(refs)
    for ref in refs.values():
        assert ref["key"] in one_named(rendered, "Secret", ref["name"])["data"]
    username = data_of(one_named(rendered, "Secret", refs["username"]["name"]))
    assert username[refs["username"]["key"]] == "relay-keda"  # the ACL user that reads lengths


def test_the_scaled_object_sums_the_keys_the_code_uses(
    rendered: Docs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the code's own key names, with the overlay's environment
    from kombu.transport.redis import Channel

    from worker.intake.inbox import Inbox
    from worker.settings import get_settings

    env = relay_env(rendered)
    for name in ("RELAY_KEY_PREFIX", "RELAY_QUEUE"):
        monkeypatch.delenv(name, raising=False)
        if name in env:
            monkeypatch.setenv(name, env[name])
    get_settings.cache_clear()
    try:
        expected = {
            "inbox": Inbox().key,
            "queue": get_settings().queue,
            "unacked": Channel.unacked_key,
        }
    finally:
        get_settings.cache_clear()

    # when the ScaledObject's triggers are read
    scaled = one(rendered, "ScaledObject")
    triggers = {t["name"]: t["metadata"]["listName"] for t in scaled["spec"]["triggers"]}

    # then they read exactly those keys, and the formula sums all of them
    assert triggers == expected
    formula = scaled["spec"]["advanced"]["scalingModifiers"]["formula"]
    assert all(name in formula for name in expected) and "+" in formula


def test_every_command_and_probe_is_one_the_code_runs(rendered: Docs) -> None:
    lines = []
    for doc in rendered:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if not is_relay(container):
                continue  # Flower's proxy runs its own image
            lines.append(container.get("command", []) + container.get("args", []))
            handlers = [container.get(p, {}) for p in PROBES]
            handlers += container.get("lifecycle", {}).values()  # preStop, postStart
            lines += [h["exec"]["command"] for h in handlers if "exec" in h]

    problems = [p for line in lines for p in problems_with(argv_of(line))]

    assert problems == []
    assert len(lines) >= 6


def test_every_environment_variable_is_one_the_code_reads(rendered: Docs) -> None:
    targets = DEPLOY / "k8s" / "overlays" / "example" / "relay.toml"
    names = set(relay_env(rendered))
    for doc in (d for d in rendered if d["kind"] == "Deployment"):
        for container in filter(is_relay, doc["spec"]["template"]["spec"]["containers"]):
            names |= {e["name"] for e in container.get("env", [])}
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    names |= set(one_named(rendered, "Secret", source["secretRef"]["name"])["data"])

    allowed = {"POD_NAME"} | secret_names_in_targets(targets)

    assert unknown_variables(names, allowed) == set()


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_every_deployment_runs_restricted_on_a_read_only_root(
    rendered: Docs, deployment: str
) -> None:
    pod = pod_spec(rendered, deployment)
    found = container_of(rendered, deployment)
    mounts = {m["mountPath"]: m["name"] for m in found["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's numeric user
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:  # Flower's proxy too
        security = container["securityContext"]
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert set(container["resources"]) == {"requests", "limits"}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_workers_probes_ask_about_this_pod(rendered: Docs) -> None:
    found = container_of(rendered, "relay-worker")
    probe = " ".join(found["livenessProbe"]["exec"]["command"])
    pod_name = next(e for e in found["env"] if e["name"] == "POD_NAME")

    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "--hostname=celery@$(POD_NAME)" in found["args"]
    assert "celery@${POD_NAME}" in probe and "--redis-down-ok" in probe
    assert "--concurrency=$(RELAY_CONCURRENCY)" in found["args"]


def test_the_grace_period_outlasts_the_longest_task_and_the_stop(rendered: Docs) -> None:
    from worker.intake.feeder import BLOCK
    from worker.settings import get_settings

    pod = pod_spec(rendered, "relay-worker")
    # The feeder's wait for its lanes (worker.bootsteps: the task budget plus 15 s), its
    # thread's last round, and Celery's warm shutdown.
    needed = get_settings().task_budget + 15 + BLOCK + 5 + 10

    assert pod["terminationGracePeriodSeconds"] > needed


def test_the_pod_monitor_scrapes_the_workers_metrics_port(rendered: Docs) -> None:
    from worker.settings import get_settings

    monitor = one(rendered, "PodMonitor", "relay-worker")
    labels = one(rendered, "Deployment", "relay-worker")["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: p["containerPort"] for p in container_of(rendered, "relay-worker")["ports"]}
    port = int(relay_env(rendered).get("RELAY_METRICS_PORT", get_settings().metrics_port))

    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert ports[monitor["spec"]["podMetricsEndpoints"][0]["port"]] == port


def test_flower_is_reached_only_through_its_authenticating_proxy(rendered: Docs) -> None:
    # given Flower's pod: Flower and an oauth2-proxy in front of it
    pod = pod_spec(rendered, "relay-flower")
    flower = container_of(rendered, "relay-flower")
    [proxy] = [c for c in pod["containers"] if c is not flower and not is_relay(c)]
    service = one(rendered, "Service", "relay-flower")
    args = dict(a.removeprefix("--").split("=", 1) for a in flower["args"] if "=" in a)
    proxied = dict(a.removeprefix("--").split("=", 1) for a in proxy["args"])
    settings = one_named(rendered, "Secret", proxy["envFrom"][0]["secretRef"]["name"])

    # then Flower listens on the pod's loopback alone, the Service sends to the proxy only,
    # which forwards to Flower and signs people in with the settings of its own Secret
    assert args["address"] == "127.0.0.1" and "ports" not in flower
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert [p["name"] for p in proxy["ports"]] == ["http"]
    assert proxied["upstream"] == f"http://127.0.0.1:{args['port']}"
    assert {"OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET"} <= set(settings["data"])
    assert "FLOWER_BASIC_AUTH" not in str(flower)  # the proxy, not a shared password


SECRETS_OF = {
    "relay-worker": "relay-worker-secrets",
    "relay-ingress": "relay-ingress-secrets",
    "relay-flower": "relay-flower-secrets",
}


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_each_component_is_given_only_its_own_secret(rendered: Docs, deployment: str) -> None:
    # given the Secrets the pod's relay container reads
    found = container_of(rendered, deployment)
    refs = [s["secretRef"]["name"] for s in found.get("envFrom", []) if "secretRef" in s]
    refs += [
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in found.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    ]

    # then it is its own alone, and no other component's secret is in it
    assert {r.rsplit("-", 1)[0].removeprefix("acme-") for r in refs} == {SECRETS_OF[deployment]}
    given = set().union(*(one_named(rendered, "Secret", r)["data"] for r in refs))
    others = {"SF_ACCESS_TOKEN", "MEDALLIA_TOKEN", "TWILIO_AUTH_TOKEN", "RELAY_INGRESS_TOKEN"}
    own = {
        "relay-worker": {"SF_ACCESS_TOKEN", "MEDALLIA_TOKEN"},
        "relay-ingress": {"TWILIO_AUTH_TOKEN", "RELAY_INGRESS_TOKEN"},
        "relay-flower": set(),
    }[deployment]
    assert own <= given and not (others - own) & given
    assert "REDIS_URL" in given and "FLOWER_BASIC_AUTH" not in given
