"""`relay dev`: the whole relay on one machine, with sample events, in one command.

Its own Redis (unless REDIS_URL is set), the look-alike APIs, Flower, a worker and the ingress,
each on a port of its own (`worker.dev.services`); sample events and providers' callbacks; a
report; lines to try it from another shell; then it runs until Ctrl-C (or SIGTERM), stops
everything it started and says where the logs are.

Keys: on its own Redis the relay's defaults (`relay:inbox`, as the docs and producers use);
on a Redis of yours (REDIS_URL set) the prefix `relay-dev`, so that a relay already using that
Redis is left alone. RELAY_KEY_PREFIX and RELAY_QUEUE, when set, win either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from worker.dev.banner import Place, Shell, places_text, shell_text
from worker.dev.demo import demo
from worker.dev.receipts import DEV_SECRETS, DEV_SOURCES
from worker.dev.samples import DEV_CONFIG
from worker.dev.services import Service, start_flower, start_ingress, start_worker
from worker.dev.workdir import Workdir
from worker.settings import get_settings, safe_url


@dataclass
class Run:
    """What one `relay dev` started, to report and to stop."""

    workdir: Workdir
    stack: contextlib.ExitStack
    shell: Shell | None = None
    places: list[Place] = field(default_factory=list)
    sandbox: Any = None
    worker: Service | None = None
    settled: bool | None = None
    """Whether the samples settled (None: not run to the end)."""


def run_dev(duration: float | None) -> int:
    """Start everything, run the samples, wait (`duration` seconds, or until a signal), stop."""
    workdir = Workdir()
    code = 1
    with _signals_stop(), contextlib.ExitStack() as stack:
        run = Run(workdir, stack)
        try:
            _start(run)
            print("relay dev: running", *places_text(run.places), sep="\n", flush=True)
            code = _demo_and_wait(run, duration)
        except KeyboardInterrupt:  # asked to stop: a failure only if the samples failed
            code = 1 if run.settled is False else 0
        finally:
            with _signals_ignored():
                stack.close()
                logs = workdir.keep_logs()
                print(
                    f"relay dev: stopped; logs in {workdir.path} ({', '.join(logs)}); the next "
                    "relay dev removes them",
                    flush=True,
                )
    return code


def _start(run: Run) -> None:
    from worker.dev.local_redis import LocalRedis
    from worker.dev.sandbox import Sandbox

    own = not os.environ.get("REDIS_URL")
    if own:
        local = LocalRedis(directory=str(run.workdir / "redis")).start()
        run.stack.callback(local.stop)
        os.environ["REDIS_URL"] = local.url
    run.sandbox = Sandbox()
    sandbox_url = run.sandbox.start()
    run.stack.callback(run.sandbox.stop)
    config_path = _configure(run.workdir, sandbox_url, own)
    settings = get_settings()
    run.shell = Shell(settings.redis_url, own, settings.key_prefix, settings.queue)
    run.places += [
        Place("Redis", safe_url(settings.redis_url), "its own" if own else "yours"),
        Place("sandbox", sandbox_url, "look-alike Salesforce and Medallia APIs"),
    ]
    # Flower first, listening before the worker's first bundle, so that it sees every task.
    flower = _started(run, start_flower(run.workdir / "flower.log", os.environ))
    run.worker = _started(
        run,
        start_worker(
            run.workdir / "worker.log", os.environ, settings.queue, f"relay-dev-{os.getpid()}"
        ),
    )
    ingress = _started(run, start_ingress(run.workdir / "ingress.log", os.environ))
    run.places += [
        Place("Flower", flower.url),
        Place("ingress", ingress.url, "providers' callbacks: POST /v1/receipts/SOURCE"),
        Place("metrics", run.worker.url or _metrics_off(), "the worker's"),
        Place("config", str(config_path)),
        Place("logs", str(run.workdir.path)),
    ]


def _metrics_off() -> str | None:
    return "off (RELAY_METRICS_PORT=0)" if os.environ.get("RELAY_METRICS_PORT") == "0" else None


def _started(run: Run, service: Service) -> Service:
    from worker.dev.processes import stop_group

    run.stack.callback(stop_group, service.process)
    return service


def _configure(workdir: Workdir, sandbox_url: str, own_redis: bool) -> Any:
    """Write the dev targets file and point this process (and its children) at it."""
    config_path = workdir / "relay.toml"
    config_path.write_text(DEV_CONFIG.format(sandbox=sandbox_url) + DEV_SOURCES.format())
    os.environ.update(DEV_SECRETS)
    default = "relay" if own_redis else "relay-dev"
    os.environ.update(
        RELAY_CONFIG=str(config_path),
        RELAY_DEV_SF_TOKEN="dev-sf-token",
        RELAY_DEV_MEDALLIA_TOKEN="dev-medallia-token",
        RELAY_KEY_PREFIX=os.environ.get("RELAY_KEY_PREFIX", default),
        RELAY_QUEUE=os.environ.get("RELAY_QUEUE", default),
        RELAY_TASK_EVENTS=os.environ.get("RELAY_TASK_EVENTS", "1"),  # Flower sees every bundle
    )
    get_settings.cache_clear()
    return config_path


def _demo_and_wait(run: Run, duration: float | None) -> int:
    assert run.worker is not None and run.shell is not None
    ingress_url = next(p.address for p in run.places if p.name == "ingress")
    run.settled = demo(run.sandbox, run.worker.process, ingress_url)
    print(*shell_text(run.shell, "medallia-sandbox"), sep="\n", flush=True)
    if not run.settled:
        return 1
    if duration is not None:
        time.sleep(duration)
        return 0
    print("relay dev: running until Ctrl-C", flush=True)
    run.worker.process.wait()
    print(f"relay dev: the worker stopped; see {run.worker.log}", flush=True)
    return 1


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGTERM and SIGHUP stop `relay dev` as Ctrl-C does: its children (in sessions of their
    own, which a terminal's signals do not reach) are stopped, not left running."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C while stopping would leave children running: stopping finishes."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
