"""Helpers every measurement shares: results, process trees, Redis accounting, waiting."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from worker.dev.processes import stop_group

CORES = os.cpu_count() or 1
AT_ONCE, SLOW = "at once", "50 ms"  # the two targets every configuration runs against

ROOT = Path(__file__).resolve().parent.parent
# Every child started through start_group, so that main() can stop whatever an error or Ctrl-C
# left running, each by its own pid.
STARTED: list[subprocess.Popen[bytes]] = []


@dataclass
class Result:
    """One configuration against one target: its runs and what was measured beside them."""

    config: str
    target: str
    rates: list[float] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    processes: int = 1
    """Worker or loop processes: a row is compared with the loop of as many processes."""
    cpu_ms_per_event: float | None = None
    rss_mb: float | None = None
    cmds_per_event: float | None = None
    redis_us_per_event: float | None = None
    target_cpu_pct: float | None = None
    ratio: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


@dataclass
class Latency:
    """Single pushes paced at a share of the loop's rate: push-to-post percentiles (ms)."""

    share: float
    rate: float
    p50: float | None
    p90: float | None
    p99: float | None
    samples: int
    cpu_ms: float | None = None
    """Worker CPU per pushed event over the run, ms."""


class Accountant:
    """Counts Redis commands across a window, minus the ones the bench itself sends.

    INFO commandstats counts every command Redis executed; the bench's own polling is known
    exactly (`own` is bumped by each caller), so the remainder is what the system under test
    (producer + consumers) cost.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.own = 0
        self._start = 0
        self._cpu = 0.0
        self.cpu_seconds = 0.0

    def total_calls(self) -> int:
        self.own += 1  # this INFO is itself counted by Redis
        stats: dict[str, Any] = self.client.info("commandstats")
        return sum(int(v["calls"]) for v in stats.values() if isinstance(v, dict))

    def cpu(self) -> float:
        """Redis's own CPU seconds so far (user + system): what sizing a Redis needs."""
        self.own += 1
        info: dict[str, Any] = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def begin(self) -> None:
        self.own = 0
        self._start = self.total_calls()
        self._cpu = self.cpu()

    def end(self) -> int:
        """Commands the system under test sent since `begin()`; `cpu_seconds` is Redis's CPU
        over the same window (the bench's own few INFO calls included, a rounding error)."""
        self.cpu_seconds = self.cpu() - self._cpu
        return self.total_calls() - self._start - self.own


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until true or `timeout` seconds passed; say which."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            found.extend(int(p) for p in text.split())
    except OSError:
        pass  # the process ended while we looked
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants, read from /proc (no psutil needed)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(pids: list[int]) -> float:
    """RSS summed over each process tree (shared pages of forked children count twice)."""
    return sum(rss_kb(p) for root in pids for p in tree(root)) / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the process trees so far (for the target's load share)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for root in pids:
        for pid in tree(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                continue
    return total / tick


def start_group(argv: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """A child in its own process group, so that it and its children stop together."""
    with open(log, "wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=ROOT,
            start_new_session=True,
        )
    STARTED.append(process)
    return process


def stop_all() -> None:
    """Stop every child this process started that is still running."""
    for process in STARTED:
        stop_group(process)


def blocked_consumers(client: redis.Redis, queue: str) -> int:
    """Connections whose last command was a BRPOP: consumers that reached their loop.

    Used as the readiness test for Celery workers at any log level (the "ready." line is only
    logged at INFO, and the relay's default level is WARNING).
    """
    del queue  # kombu may BRPOP on several keys; any BRPOP client is a ready consumer
    clients: list[dict[str, Any]] = client.client_list()
    return sum(1 for c in clients if c.get("cmd") == "brpop")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def mark(target: Any) -> tuple[float, float]:
    """The target's CPU seconds and the clock, before a measurement."""
    return cpu_seconds(target.pids()), time.monotonic()


def note_share(result: Result, target: Any, before: tuple[float, float]) -> None:
    """Keep the largest share of one core the target used during any run of this row."""
    cpu, wall = before
    share = (cpu_seconds(target.pids()) - cpu) / (time.monotonic() - wall) * 100
    result.target_cpu_pct = round(max(result.target_cpu_pct or 0.0, share), 1)
