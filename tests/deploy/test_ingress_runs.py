"""The ingress as deploy/ starts it, run here: the compose service's and the Kubernetes
container's uvicorn command as written (only --host/--port moved to a free loopback port), with
the file's environment, targets file and the session's Redis. Its health check and probes answer
as the files expect, with Redis and without; /metrics adds every process up; the callback paths
the Ingress routes reach the app and its configured sources. No Docker and no cluster: what the
files ask of the image and the kubelet is done by hand here (the tmpfs is a fresh temporary
folder, the probes are the kubelet's rules: an HTTP answer 200-399, or a TCP connection).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.kube import Docs, container_of, env_from, port_number
from tests.deploy.uses import (
    DEPLOY,
    ROOT,
    env_example,
    interpolate,
    secret_names_in_targets,
    uvicorn_params,
)
from tests.support.harness import own_key_prefix, wait_for
from worker.dev.local_redis import free_port
from worker.dev.processes import stop_group
from worker.ingress.app import RECEIPTS_PATH

pytestmark = pytest.mark.timeout(120)
UVICORN = str(Path(sys.executable).parent / "uvicorn")


@dataclass
class Running:
    """An ingress serving on 127.0.0.1:port."""

    port: int

    def status(self, method: str, path: str) -> int:
        return self.answer(method, path)[0]

    def answer(self, method: str, path: str) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=b"" if method == "POST" else None)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def health_answers_counted(self) -> float:
        """relay_ingress_requests_total{source="-", outcome="health"} as /metrics says."""
        families = text_string_to_metric_families(self.answer("GET", "/metrics")[1])
        return sum(
            s.value
            for family in families
            for s in family.samples
            if s.name == "relay_ingress_requests_total"
            and s.labels == {"source": "-", "outcome": "health"}
        )


def listening_on(argv: list[str], port: int) -> list[str]:
    """`argv` with its --host and --port (either form) replaced by 127.0.0.1 and `port`."""
    kept: list[str] = []
    values = iter(argv)
    for arg in values:
        if arg in ("--host", "--port"):
            next(values)
        elif not arg.startswith(("--host=", "--port=")):
            kept.append(arg)
    return [*kept, "--host=127.0.0.1", f"--port={port}"]


def clean_env(**given: str) -> dict[str, str]:
    """This process's environment without the relay's own settings, plus `given`."""
    drop = ("RELAY_", "PROMETHEUS_", "REDIS_URL", "SENTRY_DSN")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "PYTHONPATH": str(ROOT), **given}


@contextmanager
def running(argv: list[str], env: dict[str, str], tmp: Path) -> Iterator[Running]:
    """uvicorn started as `argv` says, from an empty folder (the image's /app), until /metrics
    answers (it needs no Redis); stopped with SIGTERM after."""
    assert argv[0] == "uvicorn", argv
    port = free_port()
    log = tmp / "ingress.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [UVICORN, *listening_on(argv[1:], port)],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ingress = Running(port)
    try:
        wait_for(lambda: _answers(ingress) or process.poll() is not None, 60, "uvicorn")
        assert process.poll() is None, log.read_text()
        yield ingress
    finally:
        stop_group(process)


def _answers(ingress: Running) -> bool:
    try:
        return ingress.status("GET", "/metrics") == 200
    except OSError:
        return False


def kubelet_probe(probe: dict[str, Any], port: int) -> bool:
    """What the kubelet concludes: an HTTP answer 200-399, or a TCP connection accepted."""
    if "tcpSocket" in probe:
        with socket.create_connection(("127.0.0.1", port), timeout=probe["timeoutSeconds"]):
            return True
    status = Running(port).status("GET", probe["httpGet"]["path"])
    return 200 <= status < 400


def kube_ingress(
    docs: Docs, tmp: Path, redis_url: str, prefix: str
) -> tuple[list[str], dict[str, str]]:
    """The ingress container's command and environment, its targets file written to `tmp`."""
    found = container_of(docs, "relay-ingress")
    [targets] = [d for d in docs if "relay-targets" in d["metadata"]["name"]]
    (tmp / "relay.toml").write_text(targets["data"]["relay.toml"])
    env = clean_env(**env_from(docs, found))  # its ConfigMap, its own Secret, its env
    env.update(RELAY_CONFIG=str(tmp / "relay.toml"), REDIS_URL=redis_url, RELAY_KEY_PREFIX=prefix)
    assert not any("$(" in arg for arg in found["args"])  # nothing for the kubelet to expand
    return found["args"], env


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Keys of the test's own on the session's Redis (refusals are counted there)."""
    with own_key_prefix(redis_url, monkeypatch, "deploy-ingress") as name:
        yield name


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """What a compose service's containers are given: its env_file (each secret set, as the
    operator would) and its environment, ${...} at their defaults."""
    env = clean_env(**env_example())
    needed = secret_names_in_targets(DEPLOY / "relay.sandbox.toml") | {"RELAY_INGRESS_TOKEN"}
    for path in service["env_file"]:
        given = env_example(path)
        env.update(
            {k: v or (f"{k.lower()}-0123456789" if k in needed else v) for k, v in given.items()}
        )
    env.update({k: interpolate(str(v)) for k, v in service["environment"].items()})
    return env


def compose_ingress(tmp: Path, redis_url: str, prefix: str) -> tuple[list[str], dict[str, str]]:
    """The compose service's command and environment (.env.example, its tmpfs a new folder,
    the targets file TARGETS_FILE mounts by default, the session's Redis)."""
    ingress = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["ingress"]
    argv = [interpolate(str(a)) for a in ingress["command"]]
    env = compose_env(ingress)
    env.update(
        RELAY_CONFIG=str(DEPLOY / "relay.sandbox.toml"),
        REDIS_URL=redis_url,
        RELAY_KEY_PREFIX=prefix,
    )
    if env.get("PROMETHEUS_MULTIPROC_DIR") in ingress["tmpfs"]:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "metrics")
        (tmp / "metrics").mkdir(exist_ok=True)
    return argv, env


def test_the_compose_ingress_answers_its_health_check_and_adds_up_every_process(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    # given the compose service's command and environment
    ingress = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["ingress"]
    argv, env = compose_ingress(tmp_path, redis_url, prefix)
    port = uvicorn_params(argv[1:])["port"]
    command, program, flag, code = ingress["healthcheck"]["test"]
    assert (command, program, flag) == ("CMD", "python", "-c") and f":{port}/" in code

    with running(argv, env, tmp_path) as served:
        # when its health check runs, /healthz is asked 40 times more, and a provider calls
        health = subprocess.run(
            [sys.executable, flag, code.replace(f":{port}/", f":{served.port}/")],
            capture_output=True,
            timeout=30,
            check=False,
        )
        answers = [served.status("GET", "/healthz") for _ in range(40)]
        unsigned = served.status("POST", RECEIPTS_PATH + "twilio-sandbox")

        # then all pass, the source refuses an unsigned callback, and /metrics counts every
        # answer, whichever of the --workers processes gave it
        assert health.returncode == 0, health.stderr
        assert set(answers) == {200} and unsigned == 401
        wait_for(lambda: served.health_answers_counted() == 41, 10, "41 health answers counted")
    assert (uvicorn_params(argv[1:])["workers"] or 1) > 1


# Redis reachable or not: what each of the ingress pod's probes concludes.
PROBES = [
    pytest.param(True, {"readinessProbe": True, "livenessProbe": True}, id="redis-up"),
    pytest.param(False, {"readinessProbe": False, "livenessProbe": True}, id="redis-down"),
]


@pytest.mark.parametrize(("redis_up", "expected"), PROBES)
def test_the_kubernetes_probes_fail_readiness_only_while_redis_is_away(
    rendered: Docs,
    tmp_path: Path,
    redis_url: str,
    prefix: str,
    redis_up: bool,
    expected: dict[str, bool],
) -> None:
    # given the ingress container's command, its environment, and Redis where the case says
    url = redis_url if redis_up else f"redis://127.0.0.1:{free_port()}/0"
    argv, env = kube_ingress(rendered, tmp_path, url, prefix)
    found = container_of(rendered, "relay-ingress")
    probes = {name: found[name] for name in expected}

    with running(argv, env, tmp_path) as served:
        # when the kubelet probes it on the ports the probes name (uvicorn's, moved here)
        for probe in probes.values():
            knocked = (probe.get("httpGet") or probe["tcpSocket"])["port"]
            assert port_number(found, knocked) == uvicorn_params(argv[1:])["port"]
        seen = {name: kubelet_probe(probe, served.port) for name, probe in probes.items()}

    # then it is ready only with Redis, and alive either way (a restart would not bring Redis)
    assert seen == expected


def test_the_paths_the_ingress_routes_reach_the_configured_sources(
    rendered: Docs, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    # given the overlay's sources and the ingress container as it runs
    argv, env = kube_ingress(rendered, tmp_path, redis_url, prefix)
    sources = tomllib.loads((tmp_path / "relay.toml").read_text())["sources"]

    with running(argv, env, tmp_path) as served:
        # when each source's provider calls, unsigned, and someone calls an unknown source
        answers = {name: served.status("POST", RECEIPTS_PATH + name) for name in sources}
        unknown = served.status("POST", RECEIPTS_PATH + "no-such-source")

    # then every source is served and asks for its signature; the unknown one is not found
    assert sources and answers == dict.fromkeys(sources, 401)
    assert unknown == 404


def commands(rendered: Docs, tmp: Path, redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "compose": compose_ingress(tmp, redis_url, prefix),
        "kubernetes": kube_ingress(rendered, tmp, redis_url, prefix),
    }


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_the_deployed_ingress_cuts_off_silent_clients_and_refuses_before_reading(
    rendered: Docs, tmp_path: Path, redis_url: str, prefix: str, where: str
) -> None:
    # given the command as deployed: uvicorn with the ingress's protocol and its bounds
    argv, env = commands(rendered, tmp_path, redis_url, prefix)[where]
    params = uvicorn_params(argv[1:])
    assert params["http"] == "worker.ingress.protocol:GuardedHttp"
    assert params["limit_concurrency"] and params["timeout_keep_alive"] >= 61
    env["RELAY_INGRESS_READ_TIMEOUT"] = "2"
    source = next(iter(tomllib.loads(Path(env["RELAY_CONFIG"]).read_text())["sources"]))

    with running(argv, env, tmp_path) as served:
        # when a client connects and sends nothing, and another announces 2 MiB unsigned
        silent = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        started = time.monotonic()
        with silent, socket.create_connection(("127.0.0.1", served.port), timeout=5) as unsigned:
            path = RECEIPTS_PATH + source
            head = f"POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {2 << 20}\r\n\r\n"
            unsigned.sendall(head.encode())
            refused = unsigned.recv(100)

            # then the unsigned one is refused before its body, the silent one cut off in time
            assert refused.startswith(b"HTTP/1.1 413")
            assert silent.recv(100) == b""
            assert time.monotonic() - started < 5
