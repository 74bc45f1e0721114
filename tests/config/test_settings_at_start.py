"""A setting that cannot be used stops the worker, the CLI and the ingress at start, saying
which and what it accepts, in one line each: never coerced to a default, never a traceback."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.support.cli import RELAY_CLI
from worker.dev.local_redis import free_port
from worker.dev.processes import worker_argv

pytestmark = pytest.mark.timeout(120)
BAD = {
    "RELAY_LOG_FORMAT": "yaml",
    "RELAY_VISIBILITY_TIMEOUT": "0",
    "RELAY_BATCH": "0",
}
SAID = [
    "RELAY_LOG_FORMAT='yaml': must be one of text, json",
    "RELAY_VISIBILITY_TIMEOUT='0': must be a number from 2 to 3,600 s",
    "RELAY_BATCH='0': must be a whole number from 1 to 10,000",
]
COMMANDS = {
    "worker": worker_argv("q-settings", "w-settings"),
    "status": [*RELAY_CLI, "status"],
    "ingress": [*RELAY_CLI, "ingress", "--port", "0"],
}


@pytest.mark.parametrize("argv", COMMANDS.values(), ids=COMMANDS.keys())
def test_settings_that_cannot_be_used_stop_the_process_at_start(argv: list[str]) -> None:
    # given values an operator could mistype (nothing listens at REDIS_URL: none is needed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "RELAY_"))}
    env.update(BAD, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", RELAY_METRICS_PORT="0")

    # when the process starts
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    # then it stops at once, listing every problem with what is accepted
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert time.monotonic() - started < 30
    for line in SAID:
        assert line in result.stderr, output
    assert "Traceback" not in output
