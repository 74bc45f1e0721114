"""The bench's rows: the hand-written loops, the relay's fleets, and latency, each measured
`--runs` times against the same target (see bench/README.md)."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from bench.common import AT_ONCE, CORES, Latency, Result, mark, note_share
from bench.events import make_events
from bench.targets import Target

LATENCY_SHARES = (0.1, 0.5, 0.8)  # of the loop's rate, one process per core


def run_loops(redis_url: str, configs: dict[str, Path], target: Target, args: Any) -> list[Result]:
    from bench.loops import run_loop

    raws = [json.dumps(e) for e in make_events(args.events, "loop")]
    results = []
    for name, config in configs.items():
        cap = args.cap if name == AT_ONCE else args.slow_loop_cap
        for processes in sorted({1, CORES}):
            result = Result(f"hand-written loop {processes}p", name, processes=processes)
            cmds, cpu = 0, 0.0
            for _ in range(args.runs):
                before = mark(target)
                run = run_loop(redis_url, str(config), raws, processes, cap)
                note_share(result, target, before)
                result.rates.append(run.rate)
                result.events.append(run.events)
                result.rss_mb = run.rss_mb
                cmds, cpu = cmds + run.redis_cmds, cpu + run.cpu_seconds
                if run.failures:
                    result.notes.append(f"{run.failures} non-2xx answers")
            result.cmds_per_event = cmds / max(sum(result.events), 1)
            result.cpu_ms_per_event = cpu * 1000 / max(sum(result.events), 1)
            results.append(result)
            print(f"  {result.config} / {name}: {result.median:,.0f} events/s", flush=True)
    return results


def run_relay(
    client: Any, configs: dict[str, Path], target: Target, logs: Path, args: Any
) -> list[Result]:
    """The relay with defaults, one worker and one per core, against each target; then one
    worker per core with Celery task events on from the start (what Flower's enable_events
    turns on), against the at-once target: the cost of task events."""
    runs = [(w, name, {}) for w in sorted({1, CORES}) for name in configs]
    runs.append((CORES, AT_ONCE, {"RELAY_TASK_EVENTS": "1"}))
    results = []
    for workers, name, env in runs:
        label = f"relay, {workers} worker(s)" + (", task events on" if env else "")
        results.append(_relay_row(client, configs, name, target, logs, args, label, workers, env))
        print(f"  {label} / {name}: {results[-1].median:,.0f} events/s", flush=True)
    return results


def _relay_row(
    client: Any,
    configs: dict[str, Path],
    name: str,
    target: Target,
    logs: Path,
    args: Any,
    label: str,
    workers: int,
    env: dict[str, str],
) -> Result:
    from bench.relay_runs import Fleet

    config = configs[name]
    result = Result(label, name, processes=workers)
    fleet = Fleet(client, config, workers, logs, env)
    try:
        _relay_runs(fleet, result, target, config, args)
        result.rss_mb = fleet.rss_mb()
    finally:
        fleet.stop()
    return result


def _relay_runs(fleet: Any, result: Result, target: Target, config: Path, args: Any) -> None:
    from bench.relay_runs import throughput

    cmds, cpu, redis_cpu, pushes = 0, 0.0, 0.0, []
    for i in range(args.runs):
        # Ids unique to the row and run: a repeat would be settled as a duplicate, unsent.
        tag = re.sub(r"\W+", "-", f"{result.config}-{config.stem}-{i}")
        events = make_events(args.events, tag, 5 + i)
        before = mark(target)
        run = throughput(fleet, events, args.cap)
        note_share(result, target, before)
        result.rates.append(run.rate)
        result.events.append(run.settled)
        cmds, cpu = cmds + run.redis_cmds, cpu + run.cpu_seconds
        redis_cpu += run.redis_cpu_seconds
        pushes.append(run.push_rate)
        if run.duplicates:
            result.notes.append(f"run {i}: {run.duplicates} settled as duplicates (unsent)")
        if run.settled < len(events):
            result.notes.append(f"run {i}: {run.settled} settled within {args.cap}s")
    result.cmds_per_event = cmds / max(sum(result.events), 1)
    result.cpu_ms_per_event = cpu * 1000 / max(sum(result.events), 1)
    result.redis_us_per_event = redis_cpu * 1e6 / max(sum(result.events), 1)
    result.notes.append(f"producer pushed at {statistics.median(pushes):,.0f} events/s")
    result.notes.append(
        f"Redis CPU {result.redis_us_per_event:.0f} us/event "
        f"(one Redis core: {1e6 / max(result.redis_us_per_event, 1e-9):,.0f} events/s)"
    )


def run_latency(
    client: Any, config: Path, target: Target, logs: Path, loop_rate: float, args: Any
) -> list[Latency]:
    """Single pushes at 10 %, 50 % and 80 % of the loop's rate (one process per core), to the
    relay with one worker per core."""
    from bench.relay_runs import Fleet, latency

    found = []
    fleet = Fleet(client, config, CORES, logs)
    try:
        for share in LATENCY_SHARES:
            run = latency(fleet, target, loop_rate * share, args.latency_seconds)
            rate = round(run.rate, 1)
            found.append(Latency(share, rate, run.p50, run.p90, run.p99, run.samples, run.cpu_ms))
            for note in run.notes:
                print(f"  note: latency at {share:.0%}: {note}", flush=True)
            print(f"  latency at {share:.0%} ({run.rate:,.0f}/s): p99 {run.p99} ms", flush=True)
    finally:
        fleet.stop()
    return found
