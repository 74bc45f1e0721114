"""A Redis the relay cannot use, met by the CLI and the worker as real processes: a wrong or
missing password is a configuration error said within seconds, never an outage, never
"healthy"; an outage is told apart from it; a bad URL is one line, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_relay_cli
from tests.support.harness import CONFIG
from worker.dev.local_redis import LocalRedis, free_port
from worker.dev.processes import worker_argv

pytestmark = pytest.mark.timeout(120)
PASSWORD = "s3cret-Pw"
FAST = 10.0  # seconds an operator may wait for the answer


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[LocalRedis]:
    """A Redis that wants a password, as compose and Kubernetes run it."""
    server = LocalRedis(password=PASSWORD).start()
    yield server
    server.stop()


def _env(redis_url: str, tmp: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "RELAY_"))}
    env.update(REDIS_URL=redis_url, RELAY_METRICS_PORT="0")
    if tmp is not None:
        config = tmp / "relay.toml"
        config.write_text(CONFIG.format(sandbox="http://127.0.0.1:9"))
        env.update(RELAY_CONFIG=str(config), SF_TOKEN="t", MD_TOKEN="t")
    return env


def _relay(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = run_relay_cli(*args, env=env, timeout=100)
    return result, time.monotonic() - started


COMMANDS = [
    ("status",),
    ("health",),
    ("health", "--redis-down-ok"),
    ("dlq", "list"),
    ("retries", "list"),
    ("trace", "ev-1"),
]


@pytest.mark.parametrize("password", ["", ":wrong-one@"], ids=["missing", "wrong"])
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_password_problem_fails_fast_and_names_authentication(
    locked_redis: LocalRedis, password: str, args: tuple[str, ...]
) -> None:
    # given REDIS_URL without the password Redis asks for, or with a wrong one
    url = f"redis://{password}127.0.0.1:{locked_redis.port}/0"

    # when the operator runs a command (a liveness probe forgiving outages among them)
    result, took = _relay(_env(url), *args)

    # then it fails within seconds, saying it is authentication and what to fix
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert took < FAST, f"{took:.1f}s"
    assert "authentication failed" in result.stderr and "REDIS_URL" in result.stderr
    assert "healthy" not in output and "Traceback" not in output
    assert "wrong-one" not in output


def test_an_outage_is_not_a_password_problem() -> None:
    # given nothing listening where REDIS_URL points
    env = _env(f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")

    # when the operator asks, and a liveness probe that forgives outages asks
    status, status_took = _relay(env, "status")
    probe, probe_took = _relay(env, "health", "--redis-down-ok")

    # then the first says it cannot reach Redis, the second forgives it, both at once
    assert status.returncode == 1 and "cannot reach Redis" in status.stderr
    assert "authentication" not in status.stderr and PASSWORD not in status.stderr
    assert probe.returncode == 0 and "Redis unreachable" in probe.stdout
    assert max(status_took, probe_took) < FAST


def test_a_server_that_never_answers_is_given_up_on_within_seconds() -> None:
    # given a port that accepts connections and never answers
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    try:
        # when the operator asks for the status
        result, took = _relay(_env(f"redis://127.0.0.1:{listener.getsockname()[1]}/0"), "status")
    finally:
        listener.close()
        for conn in held:
            conn.close()

    # then it says so well within the operator's patience
    assert result.returncode == 1 and "cannot reach Redis" in result.stderr
    assert took < FAST


def test_a_database_redis_does_not_have_is_a_configuration_error(
    locked_redis: LocalRedis,
) -> None:
    # given REDIS_URL naming database 99 of a Redis that has 16
    env = _env(f"redis://:{PASSWORD}@127.0.0.1:{locked_redis.port}/99")

    # when a liveness probe that forgives outages asks
    result, _ = _relay(env, "health", "--redis-down-ok")

    # then it fails: waiting will not cure it
    assert result.returncode == 1 and "DB index is out of range" in result.stderr


def test_an_unknown_scheme_is_one_line_naming_the_accepted_ones() -> None:
    result, _ = _relay(_env("htp://user:pw@example.com/0"), "status")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "REDIS_URL" in result.stderr and "sentinel://" in result.stderr
    assert "pw@" not in result.stderr


@pytest.mark.parametrize("password", ["", ":wrong-one@"], ids=["missing", "wrong"])
def test_a_worker_refuses_to_start_on_a_password_problem(
    locked_redis: LocalRedis, password: str, tmp_path: Path
) -> None:
    # given a worker started with REDIS_URL lacking the right password
    env = _env(f"redis://{password}127.0.0.1:{locked_redis.port}/0", tmp_path)

    # when it starts (Celery alone would log "Cannot connect ... Trying again" for ever)
    started = time.monotonic()
    result = subprocess.run(
        worker_argv("q-auth", "w-auth"), env=env, capture_output=True, text=True, timeout=60
    )

    # then it stops at once with exit status 2, saying why
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert time.monotonic() - started < 30
    assert "relay worker: Redis at" in result.stderr
    assert "authentication failed" in result.stderr and "wrong-one" not in result.stderr


@pytest.mark.parametrize("given", ["", "wrong-one"], ids=["missing", "wrong"])
def test_a_sentinel_password_problem_is_not_an_outage(locked_redis: LocalRedis, given: str) -> None:
    # given sentinels that want a password RELAY_SENTINEL_PASSWORD lacks (redis-py reports
    # only that no master was found)
    env = _env(f"sentinel://127.0.0.1:{locked_redis.port}/0")
    if given:
        env["RELAY_SENTINEL_PASSWORD"] = given

    # when a liveness probe that forgives outages asks
    result, took = _relay(env, "health", "--redis-down-ok")

    # then it fails at once, naming the sentinels' password
    assert result.returncode == 1 and took < FAST
    assert "authentication failed" in result.stderr
    assert "RELAY_SENTINEL_PASSWORD" in result.stderr and "wrong-one" not in result.stderr
