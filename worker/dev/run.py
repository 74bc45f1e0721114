"""`relay dev`: the whole relay on one machine, with sample events, in one command."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from worker.dev.local_redis import free_port
from worker.dev.processes import flower_argv, start_group, stop_group, worker_argv
from worker.dev.receipts import DEV_SECRETS, DEV_SOURCES, play_samples
from worker.dev.samples import DEV_CONFIG, sample_events
from worker.settings import get_settings, safe_url

SETTLE_TIMEOUT = 60.0


def run_dev(duration: float | None) -> int:
    """Start Redis (if REDIS_URL is unset), the sandbox and a worker; push samples; report."""
    from worker.dev.local_redis import LocalRedis
    from worker.dev.sandbox import Sandbox

    workdir = Path(tempfile.mkdtemp(prefix="relay-dev-"))
    local_redis = None
    if not os.environ.get("REDIS_URL"):
        local_redis = LocalRedis().start()
        os.environ["REDIS_URL"] = local_redis.url
    sandbox = Sandbox()
    sandbox_url = sandbox.start()
    config_path = _configure(workdir, sandbox_url)
    _add_showcase_faults(sandbox)
    # Flower first, listening before the worker's first bundle: a task whose start Flower
    # missed shows as a nameless FAILURE without arguments.
    flower_port = _port(5555)
    flower_env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = start_group(flower_argv(flower_port), workdir / "flower.log", flower_env)
    _wait_listening(flower_port, 30.0)
    worker_log = workdir / "worker.log"
    worker = _start_worker(worker_log)
    ingress_url, ingress = _start_ingress(workdir)
    print(
        f"relay dev: Redis {safe_url(get_settings().redis_url)}, sandbox {sandbox_url}, "
        f"Flower http://127.0.0.1:{flower_port}, ingress {ingress_url}, metrics http://127.0.0.1:"
        f"{get_settings().metrics_port}/metrics, config {config_path}, worker log {worker_log}"
    )
    try:
        return _demo(sandbox, worker, duration, ingress_url)
    finally:
        stop_group(worker)
        stop_group(ingress)
        stop_group(flower)
        sandbox.stop()
        if local_redis is not None:
            local_redis.stop()


def _configure(workdir: Path, sandbox_url: str) -> Path:
    """Write the dev targets file and point this process (and its children) at it."""
    config_path = workdir / "relay.toml"
    config_path.write_text(DEV_CONFIG.format(sandbox=sandbox_url) + DEV_SOURCES.format())
    os.environ.update(DEV_SECRETS)
    os.environ.update(
        RELAY_CONFIG=str(config_path),
        RELAY_DEV_SF_TOKEN="dev-sf-token",
        RELAY_DEV_MEDALLIA_TOKEN="dev-medallia-token",
        RELAY_KEY_PREFIX=os.environ.get("RELAY_KEY_PREFIX", "relay-dev"),
        RELAY_QUEUE=os.environ.get("RELAY_QUEUE", "relay-dev"),
        RELAY_TASK_EVENTS=os.environ.get("RELAY_TASK_EVENTS", "1"),  # Flower sees every bundle
    )
    get_settings.cache_clear()
    return config_path


def _add_showcase_faults(sandbox: Any) -> None:
    """Show a retry and a rejection, not only the happy path."""
    from worker.dev.sandbox.faults import Fault

    sandbox.add_fault(Fault(api="any", status=503, times=2, retry_after="1", match="msg-retry"))
    sandbox.add_fault(Fault(api="any", status=400, times=0, match="msg-reject"))


def _demo(
    sandbox: Any, worker: subprocess.Popen[bytes], duration: float | None, ingress_url: str
) -> int:
    from worker.intake.push import push_events
    from worker.ops.status import collect_status, render_status

    events = sample_events()
    started = time.monotonic()
    print(f"relay dev: pushing {len(events)} sample events")
    push_events(events)
    print("relay dev: sending providers' signed callbacks to the ingress")
    receipts = play_samples(ingress_url, DEV_SECRETS)
    settled = _wait_settled(len(events) + receipts, worker)
    print(
        f"relay dev: settled in {time.monotonic() - started:.1f}s"
        if settled
        else "relay dev: not everything settled within a minute; see the worker log"
    )
    accepted = [r for r in sandbox.requests() if r["valid"] and 200 <= r["status"] < 300]
    by_api: dict[str, int] = {}
    for request in accepted:
        by_api[request["api"]] = by_api.get(request["api"], 0) + 1
    print(
        "relay dev: requests accepted by the look-alike APIs: "
        + ", ".join(f"{api} {n}" for api, n in sorted(by_api.items()))
    )
    print(render_status(collect_status()))
    settings = get_settings()
    print(
        "relay dev: see dead letters with `relay dlq list`, replay with `relay dlq replay --all`"
        f" (with REDIS_URL={safe_url(settings.redis_url)} RELAY_CONFIG={settings.config_path}"
        f" RELAY_KEY_PREFIX={settings.key_prefix} RELAY_QUEUE={settings.queue})"
    )
    if not settled:
        return 1
    _wait(worker, duration)
    return 0


def _wait_settled(expected: int, worker: subprocess.Popen[bytes]) -> bool:
    from worker.ops.status import collect_status
    from worker.stores.counters import settled_events

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline and worker.poll() is None:
        report = collect_status()
        done = settled_events(report["outcomes"])
        queue = report["queue"]
        waiting = report["retries_waiting"] or queue["depth"] or queue["inbox"]
        if done >= expected and not waiting:
            return True
        time.sleep(0.5)
    return False


def _wait_listening(port: int, timeout: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port` (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


def _port(preferred: int) -> int:
    """`preferred` when nothing listens there (the port people expect), else any free one."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    return free_port()


def _start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    argv = worker_argv(get_settings().queue, f"relay-dev-{os.getpid()}", "--loglevel=INFO")
    return start_group(argv, log_path, os.environ)


def _start_ingress(workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """`relay ingress` on port 8080 when free; its URL once it answers."""
    import sys
    import urllib.request

    port = _port(8080)
    argv = [sys.executable, "-m", "worker.ops.cli.main", "ingress", "--port", str(port)]
    process = start_group(argv, workdir / "ingress.log", os.environ)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/healthz", timeout=2):
            break
        time.sleep(0.2)
    return url, process


def _wait(worker: subprocess.Popen[bytes], duration: float | None) -> None:
    if duration is not None:
        time.sleep(duration)
        return
    print("relay dev: running; push more with `relay push FILE` in another shell. Ctrl-C stops.")
    with contextlib.suppress(KeyboardInterrupt):
        worker.wait()
