"""Real processes for integration tests: a relay environment, `celery worker`s, `relay` CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.support.cli import run_relay_cli
from worker.dev.processes import start_group, stop_group, worker_argv
from worker.ops.status import backlog
from worker.settings import get_settings
from worker.stores.counters import Counters, settled_events
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.retries import RetrySchedule

CONFIG = """\
[retry]
base_delay = 0.2
max_delay = 5.0
max_attempts = 4
max_age = 120.0

[targets.sf]
kind = "salesforce"
base_url = "{sandbox}/salesforce"
org_id = "00D5g000004xyzA"
authorization_context = "Partner1_ChannelDefinition1"
auth = {{ type = "bearer", token = "${{SF_TOKEN}}" }}

[targets.md]
kind = "medallia"
base_url = "{sandbox}/medallia"
channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"
auth = {{ type = "bearer", token = "${{MD_TOKEN}}" }}
"""


class Relay:
    """One isolated relay (own key prefix and queue) on the shared Redis and sandbox."""

    def __init__(
        self,
        tmp: Path,
        redis_url: str,
        sandbox_url: str,
        monkeypatch: pytest.MonkeyPatch,
        config: str = CONFIG,
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tmp = tmp
        config_text, config = config, tmp / "relay.toml"
        config.write_text(config_text.format(sandbox=sandbox_url))
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "RELAY_CONFIG": str(config),
            "RELAY_KEY_PREFIX": f"t-{tag}",
            "RELAY_QUEUE": f"q-{tag}",
            "RELAY_RETRY_POLL": "0.1",
            "RELAY_RETRY_LEASE": "5",
            "RELAY_METRICS_PORT": "0",
            "SF_TOKEN": "sf-test-token",
            "MD_TOKEN": "md-test-token",
        }
        for name in ("REDIS_URL", "RELAY_CONFIG", "RELAY_KEY_PREFIX", "RELAY_QUEUE"):
            monkeypatch.setenv(name, self.env[name])
        get_settings.cache_clear()
        self.workers: list[subprocess.Popen[bytes]] = []

    # processes ------------------------------------------------------------------------------

    def start_worker(self, name: str = "w", concurrency: int = 4) -> subprocess.Popen[bytes]:
        """A real `celery -A worker worker` in its own process group; waits until it is ready."""
        log_path = self.tmp / f"{name}-{len(self.workers)}.log"
        argv = worker_argv(
            self.env["RELAY_QUEUE"],
            f"{name}-{uuid.uuid4().hex[:6]}",
            "-c",
            str(concurrency),
            "-l",
            "INFO",
        )
        process = start_group(argv, log_path, self.env)
        self.workers.append(process)
        wait_for(
            lambda: b" ready." in log_path.read_bytes() or process.poll() is not None,
            30,
            f"worker {name} to start",
        )
        assert process.poll() is None, log_path.read_text()
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker's whole process group, as a crash or OOM kill would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.workers:
            stop_group(process)

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the `relay` command line with this relay's environment."""
        return run_relay_cli(*args, env=self.env, stdin=stdin, timeout=timeout)

    def send_task(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Publish a Celery message straight onto this relay's queue, as any client (or a
        newer relay) could: an app of its own, so no other test's broker settings apply."""
        app = Celery("test-client", broker=self.env["REDIS_URL"])
        try:
            app.send_task(name, args=list(args), kwargs=kwargs, queue=self.env["RELAY_QUEUE"])
        finally:
            app.close()

    def push(self, *events: Any) -> subprocess.CompletedProcess[str]:
        lines = "\n".join(e if isinstance(e, str) else json.dumps(e) for e in events) + "\n"
        result = self.cli("push", "-", stdin=lines)
        return result

    # state ----------------------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        return list(DeadLetterStore().iter())

    def counts(self, target: str) -> dict[str, int]:
        return Counters().snapshot().get(target, {})

    def retries_waiting(self) -> int:
        return RetrySchedule().count()

    def waiting(self) -> int:
        """Events parked for a retry or queued for a worker."""
        return self.retries_waiting() + backlog()

    def settled(self, expected: int) -> bool:
        """True once `expected` events reached a final outcome and nothing waits to retry."""
        final = settled_events(Counters().snapshot())
        return final >= expected and self.retries_waiting() == 0

    def wait_settled(self, expected: int, timeout: float = 30) -> None:
        wait_for(lambda: self.settled(expected), timeout, f"{expected} event(s) to settle")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def event(target: str, status: str, *mids: str, **extra: Any) -> dict[str, Any]:
    """A valid canonical event for `target` ("sf" or "md")."""
    base: dict[str, Any] = {
        "event_id": f"ev-{uuid.uuid4().hex[:12]}",
        "target": target,
        "status": status,
        "message_ids": list(mids) or [f"m-{uuid.uuid4().hex[:10]}"],
        "channel": "72a6a4ec-acbc-44f6-b2b9-e444248ca843" if target == "sf" else "page-1",
        "recipient": "+4915112345678",
        "occurred_at": "2026-11-23T10:00:00+00:00",
    }
    if target == "sf" and status in ("delivered", "read"):
        base["conversation_id"] = "c0a8e9f2-0000-4000-8000-00000000c0de"
    if status in ("failed", "undelivered"):
        base["error"] = {"code": 207, "name": "Unavailable", "message": "Unable to deliver"}
    return {**base, **extra}


def posted_ids(requests: list[dict[str, Any]]) -> list[str]:
    """Message ids in the requests a look-alike API accepted (2xx), once per request."""
    ids: list[str] = []
    for request in requests:
        body = request.get("json") or {}
        if not 200 <= request["status"] < 300:
            continue
        if request["endpoint"] == "messages":
            ids += [m for e in body["entry"] for x in e["messaging"] for m in x["delivery"]["mids"]]
        elif request["endpoint"] == "interactions":
            ids += [i["payload"]["failedConversationEntryIdentifier"] for i in body["interactions"]]
        elif request["endpoint"] == "acknowledgement":
            ids += [a["acknowledgedConversationEntryIdentifier"] for a in body["acknowledgements"]]
    return ids


def worker_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """Resident memory of a worker's process group, in MB (from /proc)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == process.pid:  # field 5 of stat: the process group id
                pages = int((status.parent / "statm").read_text().split()[1])
                total += pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return round(total / 1e6, 1)


@contextmanager
def own_key_prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch, label: str) -> Iterator[str]:
    """A key prefix of the caller's own on the session's Redis; its keys are deleted after."""
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("RELAY_KEY_PREFIX", name)
    get_settings.cache_clear()
    try:
        yield name
    finally:
        get_settings.cache_clear()
        client = redis.Redis.from_url(redis_url)
        try:
            stale = list(client.scan_iter(match=f"{name}:*"))
            if stale:
                client.delete(*stale)
        finally:
            client.close()
