"""The `relay` command line as tests run it: this interpreter's `worker.ops.cli.main`, in a
process of its own, with the environment the test gives it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

RELAY_CLI = [sys.executable, "-m", "worker.ops.cli.main"]


def run_relay_cli(
    *args: str,
    env: Mapping[str, str],
    stdin: str | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`relay ARGS...` run to its end; its exit status, stdout and stderr (never raises on a
    non-zero status)."""
    return subprocess.run(
        [*RELAY_CLI, *args],
        input=stdin,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
