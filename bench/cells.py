"""Cells at one fixed load (`make bench`'s cells rows, or `python -m bench.cells`): 1, 2 and 3
cells, each its own redis-server with one worker, the same paced load of events pushed through
`push_events` (which routes each to its cell); per cell, Redis's CPU (% of one core, and µs
per event) and commands per event; overall, events/s settled.

The load is paced (RELAY's producers push as events come, not all at once) so that every row
carries the same events per second and the Redis side can be compared: it should divide by
the number of cells while the events per second stay the load's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from bench.common import Accountant, blocked_consumers, start_group, stop_group, wait_until
from bench.events import make_events
from bench.relay_runs import TARGET_NAMES, write_config
from worker.dev.local_redis import LocalRedis, free_port

CELLS_RATE = 1000.0
"""Events/s of the fixed load: what one worker per cell keeps up with on a loaded 2-core VM."""
CELLS_SECONDS = 10.0


@dataclass
class CellsRow:
    cells: int
    events: int
    events_per_s: float
    redis_cpu_pct: list[float]
    """Each cell's Redis CPU over the run, in % of one core."""
    redis_us_per_event: list[float]
    """Each cell's Redis CPU per event it settled."""
    cmds_per_event: float
    share: list[int]
    """Events each cell settled."""


class CellFleet:
    """`count` redis-servers and a worker serving each, with RELAY_CELLS naming them."""

    def __init__(self, count: int, config: Path, logs: Path) -> None:
        self.servers = [LocalRedis().start() for _ in range(count)]
        self.urls = [s.url for s in self.servers]
        self.clients = [redis.Redis.from_url(u) for u in self.urls]
        self.workers: list[Any] = []
        cells = {"RELAY_CELLS": ",".join(self.urls)} if count > 1 else {}
        os.environ["REDIS_URL"] = self.urls[0]  # this process pushes through the cells
        os.environ.pop("RELAY_CELLS", None)
        os.environ.update(cells)
        _fresh_settings()
        for i, url in enumerate(self.urls):
            env = {**os.environ, **cells, "REDIS_URL": url, "RELAY_CONFIG": str(config)}
            env["RELAY_METRICS_PORT"] = str(free_port())
            argv = [sys.executable, "-m", "celery", "-A", "worker", "worker"]
            argv += ["-n", f"cell{i}-{os.getpid()}@%h"]
            self.workers.append(start_group(argv, logs / f"cells{count}-{i}.log", env))
        for client in self.clients:
            if not wait_until(lambda c=client: blocked_consumers(c, "") >= 1, 90, 0.2):
                self.stop()
                raise RuntimeError(f"cell workers did not start; see {logs}")
        time.sleep(1.0)

    def settled(self) -> list[int]:
        from worker.stores.connection import key

        found = []
        for client in self.clients:
            pipe = client.pipeline(transaction=False)
            for name in TARGET_NAMES:
                pipe.hgetall(key("stats", name))
            counts = pipe.execute()
            found.append(sum(int(v) for c in counts for k, v in c.items() if k != b"retried"))
        return found

    def stop(self) -> None:
        for process in self.workers:
            stop_group(process)
        for server in self.servers:
            server.stop()


def _fresh_settings() -> None:
    from worker.settings import get_settings

    get_settings.cache_clear()


def paced_push(events: list[Any], rate: float) -> None:
    """Push `events` at `rate` per second, a twentieth of a second's worth at a time."""
    from worker.intake.push import push_events

    step = max(1, int(rate / 20))
    began = time.monotonic()
    for start in range(0, len(events), step):
        push_events(events[start : start + step])
        due = began + (start + step) / rate
        time.sleep(max(0.0, due - time.monotonic()))


def cells_row(count: int, config: Path, logs: Path, rate: float, seconds: float) -> CellsRow:
    """One row: `count` cells under `rate` events/s for `seconds`."""
    fleet = CellFleet(count, config, logs)
    try:
        paced_push(make_events(500, f"warm{count}"), rate)
        wait_until(lambda: sum(fleet.settled()) >= 500, 60, 0.05)
        before = fleet.settled()
        accountants = [Accountant(c) for c in fleet.clients]
        for accountant in accountants:
            accountant.begin()
        events = make_events(int(rate * seconds), f"cells{count}-{time.time_ns()}")
        began = time.monotonic()
        paced_push(events, rate)
        total = sum(before) + len(events)
        wait_until(lambda: sum(fleet.settled()) >= total, 120 + seconds, 0.05)
        elapsed = time.monotonic() - began
        share = [a - b for a, b in zip(fleet.settled(), before, strict=True)]
        cmds = sum(a.end() for a in accountants)
        cpu = [a.cpu_seconds for a in accountants]
        return CellsRow(
            cells=count,
            events=len(events),
            events_per_s=round(min(sum(share), len(events)) / elapsed, 1),
            redis_cpu_pct=[round(100 * c / elapsed, 1) for c in cpu],
            redis_us_per_event=[
                round(1e6 * c / max(1, n), 1) for c, n in zip(cpu, share, strict=True)
            ],
            cmds_per_event=round(cmds / max(1, len(events)), 2),
            share=share,
        )
    finally:
        fleet.stop()


def format_rows(rows: list[CellsRow]) -> str:
    lines = [
        "| cells | events/s | Redis CPU per cell (% of a core) | Redis µs/event per cell "
        "| cmds/event |",
        "|---:|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.cells} | {r.events_per_s:,.0f} | {' / '.join(map(str, r.redis_cpu_pct))} "
            f"| {' / '.join(map(str, r.redis_us_per_event))} | {r.cmds_per_event} |"
        )
    return "\n".join(lines)


def run_cells(target_url: str, workdir: Path, rate: float, seconds: float) -> list[CellsRow]:
    """The rows for 1, 2 and 3 cells, at the same load (REDIS_URL restored after)."""
    config = write_config(workdir, target_url, "cells")
    saved = {k: os.environ.get(k) for k in ("REDIS_URL", "RELAY_CELLS")}
    try:
        return [cells_row(n, config, workdir, rate, seconds) for n in (1, 2, 3)]
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
        _fresh_settings()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cells", description=__doc__)
    parser.add_argument("--rate", type=float, default=CELLS_RATE, help="events/s pushed")
    parser.add_argument("--seconds", type=float, default=CELLS_SECONDS, help="per row")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    os.environ.setdefault("BENCH_SF_TOKEN", "bench-sf-token")
    os.environ.setdefault("BENCH_MD_TOKEN", "bench-md-token")
    from bench.common import stop_all
    from bench.targets import start_target

    target = start_target(os.cpu_count() or 1)
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-cells-"))
    try:
        runs = [
            run_cells(target.url("fast"), workdir, args.rate, args.seconds)
            for _ in range(args.runs)
        ]
    finally:
        target.stop()
        stop_all()
    for rows in runs:
        print(format_rows(rows), flush=True)
    write_rows(args.out / "cells.json", runs)
    print(f"logs in {workdir}")


def write_rows(path: Path, runs: list[list[CellsRow]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = [[asdict(r) for r in rows] for rows in runs]
    path.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
