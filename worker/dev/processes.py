"""Child processes the relay's tools start: `celery worker`s, each in its own process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def worker_argv(queue: str, name: str, *extra: str) -> list[str]:
    """The command line of a relay worker consuming `queue`."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker",
        "worker",
        "-n",
        f"{name}@%h",
        "-Q",
        queue,
        "--without-mingle",
        "--without-gossip",
        *extra,
    ]


def flower_argv(port: int) -> list[str]:
    """The command line of Flower watching the relay's workers, on 127.0.0.1:`port`."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker",
        "flower",
        f"--port={port}",
        "--address=127.0.0.1",
    ]


def start_group(argv: list[str], log_path: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start a child in a new process group (so it and its children stop together)."""
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env), start_new_session=True
        )


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group (a warm shutdown), SIGKILL it if it overstays `timeout`."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
