"""The processes `relay dev` starts beside its own: Flower, a worker and the ingress, each on a
port the kernel picked for it, read back from that process's own log.

A port chosen by probing ("nothing answers on 5555") is not one's own: another `relay dev`
may probe the same instant, or another program may already hold it, and the URL then printed
leads to someone else's Flower or metrics. Flower and the ingress bind port 0 themselves and
log what they got; the worker's metrics port is picked free and its log says whether it took it.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from worker.dev.local_redis import free_port
from worker.dev.processes import flower_argv, start_group, worker_argv

START_TIMEOUT = 60.0  # seconds a child may take to say where it listens (a busy machine)
_FLOWER = re.compile(r"Visit me at (http://[\d.]+:\d+)")
_INGRESS = re.compile(r"Uvicorn running on (http://[\d.]+:\d+)")
_METRICS = re.compile(r"metrics on http://[\d.]+:(\d+)/metrics")
_READY = re.compile(r" ready\.")


@dataclass
class Service:
    """A child process and where it serves (None: it could not; its log says why)."""

    name: str
    process: Popen[bytes]
    log: Path
    url: str | None


def start_flower(log: Path, env: Mapping[str, str]) -> Service:
    """Flower on 127.0.0.1, its port picked by the kernel."""
    process = start_group(flower_argv(0), log, {**env, "FLOWER_UNAUTHENTICATED_API": "true"})
    found = wait_for_line(process, log, _FLOWER)
    return Service("Flower", process, log, found.group(1) if found else None)


def start_worker(log: Path, env: Mapping[str, str], queue: str, name: str) -> Service:
    """A worker, serving metrics on a free port unless RELAY_METRICS_PORT says otherwise; its
    URL is given only if the worker's log says it listens there."""
    port = env.get("RELAY_METRICS_PORT") or str(free_port())
    argv = worker_argv(queue, name, "--loglevel=INFO")
    process = start_group(argv, log, {**env, "RELAY_METRICS_PORT": port})
    wait_for_line(process, log, _READY)
    served = _METRICS.search(_text(log))
    url = f"http://127.0.0.1:{port}/metrics" if served and served.group(1) == port else None
    return Service("worker", process, log, url)


def start_ingress(log: Path, env: Mapping[str, str]) -> Service:
    """The ingress as production runs it (uvicorn), on 127.0.0.1, its port picked by the
    kernel; its URL once it answers."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "worker.ingress.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-access-log",  # a query string can hold a source's token
        "--log-level",
        "info",
    ]
    process = start_group(argv, log, env)
    found = wait_for_line(process, log, _INGRESS)
    url = found.group(1) if found else None
    deadline = time.monotonic() + START_TIMEOUT
    while url and time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/healthz", timeout=2):
            break
        time.sleep(0.2)
    return Service("ingress", process, log, url)


def wait_for_line(
    process: Popen[bytes], log: Path, pattern: re.Pattern[str]
) -> re.Match[str] | None:
    """The first match of `pattern` in the child's log; None if the child ends first or it
    takes longer than START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = pattern.search(_text(log))
        if found or process.poll() is not None:
            return found
        time.sleep(0.1)
    return None


def _text(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""
