"""The workers' liveness probe: a Redis outage, which workers ride out, must not fail it."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.cli import run_relay_cli
from worker.dev.local_redis import free_port

pytestmark = pytest.mark.timeout(90)


def health(*flags: str) -> subprocess.CompletedProcess[str]:
    """`relay health` as the probe runs it, with nothing listening where REDIS_URL points."""
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    return run_relay_cli("health", "--worker", "celery@pod-1", *flags, env=env)


def test_the_probe_passes_while_redis_is_away_and_the_plain_check_does_not() -> None:
    # when Redis cannot be reached (both asked at once: each waits out the client's retries)
    with ThreadPoolExecutor(2) as pool:
        probe, plain = pool.map(lambda flags: health(*flags), [("--redis-down-ok",), ()])

    # then the probe's form says so and passes; the operator's form fails, as before
    assert probe.returncode == 0, probe.stderr
    assert "Redis unreachable" in probe.stdout
    assert plain.returncode == 1 and "cannot reach Redis" in plain.stderr
