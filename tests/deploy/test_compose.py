"""deploy/compose.yaml offline: valid against the Compose specification, and runnable as written
(Redis persistent and never evicting, workers that scale, the ingress on the port its health
check asks, Flower behind auth, secrets outside)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.uses import (
    DEPLOY,
    ROOT,
    argv_of,
    env_example,
    interpolate,
    problems_with,
    secret_names_in_targets,
    unknown_variables,
    uvicorn_params,
)

pytestmark = pytest.mark.timeout(60)
COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return found


def test_the_compose_file_follows_the_compose_specification() -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_redis_persists_every_second_never_evicts_and_keeps_a_volume(
    services: dict[str, Any],
) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])

    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_workers_scale_flower_asks_for_a_password_and_the_sandbox_is_optional(
    services: dict[str, Any],
) -> None:
    worker, flower, sandbox = services["worker"], services["flower"], services["sandbox"]

    assert "container_name" not in worker  # `--scale worker=N` needs names compose makes
    assert any(arg.startswith("--concurrency=") for arg in worker["command"])
    assert "healthcheck" in worker and worker["stop_grace_period"] == "90s"
    assert "FLOWER_BASIC_AUTH" in env_file_names(flower)
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
    assert sandbox["profiles"] == ["sandbox"]


def env_file_names(service: dict[str, Any]) -> set[str]:
    """The variables a service's env_file gives it (read from each file's committed example)."""
    names: set[str] = set()
    for path in service.get("env_file", []):
        example = DEPLOY / f"{path}.example"
        lines = example.read_text().splitlines()
        names |= {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    return names


def given_to(service: dict[str, Any]) -> set[str]:
    """Every variable a service's containers are given."""
    return set(service.get("environment") or {}) | env_file_names(service)


def test_secrets_come_from_env_files_that_are_neither_committed_nor_built_in(
    services: dict[str, Any],
) -> None:
    docker_ignore = (ROOT / ".dockerignore").read_text().splitlines()
    let_in = [line[1:] for line in docker_ignore if line.startswith("!")]
    files = {f for s in services.values() for f in s.get("env_file", [])}

    assert files == {"env/worker.env", "env/ingress.env", "env/flower.env"}
    for path in [*files, ".env"]:
        ignored = subprocess.run(["git", "check-ignore", "-q", str(DEPLOY / path)], cwd=ROOT)
        assert ignored.returncode == 0, f"deploy/{path} must be ignored by git"
        assert (DEPLOY / f"{path}.example").exists()
    assert "*" in docker_ignore and not any(p.startswith(("deploy", ".env")) for p in let_in)


def test_each_service_is_given_only_the_secrets_it_uses(services: dict[str, Any]) -> None:
    # given the secrets of the sandbox's targets file, by the part that uses them
    sources = {"TWILIO_AUTH_TOKEN", "RELAY_INGRESS_TOKEN"}
    targets = secret_names_in_targets(DEPLOY / "relay.sandbox.toml") - sources
    redis_passwords = {f"REDIS_{u}_PASSWORD" for u in ("WORKER", "INGRESS", "FLOWER")}

    # then a worker gets the targets' alone, the ingress the sources' alone, Flower neither
    worker, ingress, flower = (given_to(services[n]) for n in ("worker", "ingress", "flower"))
    assert targets <= worker and not (sources | {"FLOWER_BASIC_AUTH"}) & worker
    assert sources <= ingress and not (targets | {"FLOWER_BASIC_AUTH"}) & ingress
    assert not (targets | sources) & flower
    assert not redis_passwords & (worker | ingress | flower)
    assert not any(".env" in s.get("env_file", []) for s in services.values())


def test_each_component_connects_to_redis_as_its_own_acl_user(services: dict[str, Any]) -> None:
    template = (DEPLOY / "redis" / "users.acl.template").read_text()
    users = {line.split()[1] for line in template.splitlines() if line.startswith("user ")}

    for name in ("worker", "ingress", "flower", "ops"):
        url = urlsplit(interpolate(services[name]["environment"]["REDIS_URL"]))
        assert url.username == f"relay-{name}" and url.username in users
    assert "default" in users and "user default off" in template
    assert "--aclfile" in " ".join(services["redis"]["command"])
    assert "requirepass" not in COMPOSE.read_text()


def test_nothing_starts_with_the_examples_passwords() -> None:
    # compose's ${VAR:?} refuses an unset or empty variable: the example leaves them empty
    example = env_example()
    passwords = [name for name in example if name.endswith("_PASSWORD")]

    assert len(passwords) == 5 and all(example[name] == "" for name in passwords)
    assert all(f"${{{name}:?" in COMPOSE.read_text() for name in passwords)
    assert "=change-me" not in (DEPLOY / ".env.example").read_text()


def test_every_command_and_health_check_is_one_the_code_runs(services: dict[str, Any]) -> None:
    lines = []
    for service in services.values():
        if "command" in service:
            argv = [*service.get("entrypoint", []), *service["command"]]
            lines.append([interpolate(str(a)) for a in argv])
        if "healthcheck" in service:
            lines.append([interpolate(str(a)) for a in service["healthcheck"]["test"]])

    problems = [p for line in lines for p in problems_with(argv_of(line))]

    assert problems == []
    assert len(lines) >= 6


def test_every_environment_variable_is_one_the_code_reads(services: dict[str, Any]) -> None:
    names = set(env_example())
    for service in services.values():
        names |= given_to(service)
    # Compose's own ${...} (image, targets file, Redis settings) and the sandbox's tokens.
    allowed = {"IMAGE", "TARGETS_FILE", "REDIS_MAXMEMORY", "REDISCLI_AUTH", "INGRESS_WORKERS"}
    allowed |= {f"REDIS_{u}_PASSWORD" for u in ("WORKER", "INGRESS", "FLOWER", "OPS", "KEDA")}
    allowed |= secret_names_in_targets(DEPLOY / "relay.sandbox.toml")
    allowed |= {"WORKER_CELLS", "INGRESS_CELLS", "OPS_CELLS"}  # the cells profile's lists

    assert unknown_variables(names, allowed) == set()


def ingress_params(services: dict[str, Any]) -> dict[str, Any]:
    """What uvicorn makes of the ingress service's command, ${...} at their defaults."""
    command = [interpolate(str(a)) for a in services["ingress"]["command"]]
    assert command[0] == "uvicorn"
    return uvicorn_params(command[1:])


def test_the_ingress_listens_where_its_port_and_health_check_point(
    services: dict[str, Any],
) -> None:
    ingress = services["ingress"]
    params = ingress_params(services)
    [published] = ingress["ports"]
    host, _, container_port = published.split(":")
    [url] = [a for a in ingress["healthcheck"]["test"] if "http://" in a]
    health = urlsplit(url[url.index("http://") :].split("'")[0])

    assert int(container_port) == params["port"] == health.port
    assert health.path == "/healthz" and params["host"] == "0.0.0.0"
    assert host == "127.0.0.1"  # plain HTTP: only the TLS proxy in front should reach it
    assert params["access_log"] is False  # it would print query strings, tokens among them
    assert "container_name" not in ingress


def test_several_ingress_processes_count_their_metrics_on_a_fresh_tmpfs(
    services: dict[str, Any],
) -> None:
    ingress = services["ingress"]
    directory = ingress["environment"]["PROMETHEUS_MULTIPROC_DIR"]

    # prometheus_client adds processes up from files in that directory, which must start empty:
    # a tmpfs of its own is, at every container start.
    assert (ingress_params(services)["workers"] or 1) > 1
    assert directory in ingress["tmpfs"] and "/tmp" in ingress["tmpfs"]
    mounted = [interpolate(str(v)).split(":")[1] for v in ingress["volumes"]]
    assert not any(directory.startswith(m) or m.startswith(directory) for m in mounted)
