"""`python -m bench` (`make bench`): the relay beside this machine's ceilings, in one run.

See bench/README.md for what is measured and how. Everything runs on 127.0.0.1: a throwaway
Redis, an nginx target, and the configurations under test; every process started is stopped
by its pid (process group) before exit, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import AT_ONCE, CORES, ROOT, SLOW, Latency, Result, stop_all
from bench.events import make_events
from bench.rows import run_latency, run_loops, run_relay
from bench.targets import Target, start_target


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS") or 30_000))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS") or 3))
    parser.add_argument("--cap", type=float, default=150.0, help="longest run, seconds")
    parser.add_argument(
        "--slow-loop-cap",
        type=float,
        default=5.0,
        help="seconds per hand-written loop run against the 50 ms target (it does 20/s/process)",
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--flood-seconds", type=float, default=5.0, help="a run of the ingress's flood rows"
    )
    parser.add_argument(
        "--loop-rate", type=float, default=2000.0, help="with --skip loops: the loop's rate"
    )
    parser.add_argument("--parked", type=int, default=0, help="only the parked-retries check")
    parser.add_argument(
        "--skip", default="", help="comma list of: loops,relay,latency,ingress,cells"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    return parser.parse_args()


def run_parked(client: Any, target: Target, workdir: Path, args: Any) -> dict[str, Any]:
    from bench.relay_runs import Fleet, parked_run, write_config

    config = write_config(workdir, target.url("parked"), "parked")
    # Warm-up: the first burst grows thread pools, connection pools and the allocator's arenas
    # once; that is start-up cost, not what parked events cost. A tenth of the events does it.
    warmup = make_events(max(1000, args.parked // 10), "parked-warmup", postable_only=True)
    events = make_events(args.parked, "parked", seed=7, postable_only=True)
    fleet = Fleet(client, config, os.cpu_count() or 1, workdir)
    try:
        return parked_run(fleet, warmup, events, max(600.0, args.parked / 50))
    finally:
        fleet.stop()


def main() -> None:
    args = parse_args()
    began = time.monotonic()
    from bench.report import machine

    host = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in host.items()), flush=True)
    os.environ.setdefault("BENCH_SF_TOKEN", "bench-sf-token")
    os.environ.setdefault("BENCH_MD_TOKEN", "bench-md-token")
    from worker.dev.local_redis import LocalRedis

    redis_server = LocalRedis().start()
    os.environ["REDIS_URL"] = redis_server.url  # before anything imports the Celery apps
    os.environ.pop("RELAY_CONFIG", None)
    from worker.settings import get_settings

    get_settings.cache_clear()
    target: Target | None = None
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    try:
        import redis

        client = redis.Redis.from_url(redis_server.url)
        target = start_target(os.cpu_count() or 1)
        print(f"target: {target.kind} on {target.ports} {' '.join(target.notes)}", flush=True)
        if args.parked:
            summary = run_parked(client, target, workdir, args)
            print(json.dumps(summary, indent=2))
            args.out.mkdir(parents=True, exist_ok=True)
            payload = {"machine": host, "target": target.kind, "parked": summary}
            (args.out / "parked.json").write_text(json.dumps(payload, indent=2) + "\n")
            return
        run_all(client, redis_server.url, target, workdir, host, args, began)
    finally:
        if target is not None:
            target.stop()
        stop_all()
        redis_server.stop()
        print(f"wall-clock: {time.monotonic() - began:.0f} s (logs in {workdir})", flush=True)


def run_all(
    client: Any,
    redis_url: str,
    target: Target,
    workdir: Path,
    host: dict[str, Any],
    args: Any,
    began: float,
) -> None:
    from bench.relay_runs import write_config

    configs = {
        AT_ONCE: write_config(workdir, target.url("fast"), "fast"),
        SLOW: write_config(workdir, target.url("slow"), "slow"),
    }
    sizes = [len(json.dumps(e)) for e in make_events(min(args.events, 2000), "size")]
    print(
        f"events: {args.events} per run, {args.runs} runs, mean event size "
        f"{statistics.mean(sizes):.0f} bytes",
        flush=True,
    )
    results, latencies = _measure(client, redis_url, configs, target, workdir, args)
    _report(results, latencies, target, host, args, began)
    if "ingress" not in args.skip.split(","):
        from bench.ingress import run_ingress

        relay = [r.median for r in results if r.config.startswith("relay") and r.target == AT_ONCE]
        args.seconds = args.latency_seconds
        print("\ningress (one process) beside a bare server on the same stack:", flush=True)
        rows = run_ingress(redis_url, workdir, args, max(relay) if relay else 2041.0)
        (args.out / "ingress.json").write_text(json.dumps(rows, indent=2) + "\n")
    if "cells" not in args.skip.split(","):
        from bench.cells import CELLS_RATE, CELLS_SECONDS, format_rows, run_cells, write_rows

        print(f"\ncells, each its own redis-server and worker, at {CELLS_RATE:g} events/s:")
        cells = run_cells(target.url("fast"), workdir, CELLS_RATE, CELLS_SECONDS)
        print(format_rows(cells), flush=True)
        write_rows(args.out / "cells.json", [cells])


def _measure(
    client: Any,
    redis_url: str,
    configs: dict[str, Path],
    target: Target,
    workdir: Path,
    args: Any,
) -> tuple[list[Result], list[Latency]]:
    """Every configuration the arguments do not skip, with ratios to the baseline; then the
    latency runs at shares of the loop's rate."""
    from bench.report import add_ratios

    skip = set(filter(None, args.skip.split(",")))
    results: list[Result] = []
    if "loops" not in skip:
        results += run_loops(redis_url, configs, target, args)
    if "relay" not in skip:
        results += run_relay(client, configs, target, workdir, args)
    add_ratios(results)
    loop = [r.median for r in results if r.config == f"hand-written loop {CORES}p"]
    latencies: list[Latency] = []
    if "latency" not in skip:
        rate = loop[0] if loop and loop[0] else args.loop_rate
        latencies = run_latency(client, configs[AT_ONCE], target, workdir, rate, args)
    return results, latencies


def _report(
    results: list[Result],
    latencies: list[Latency],
    target: Target,
    host: dict[str, Any],
    args: Any,
    began: float,
) -> None:
    """The tables, notes and goals on stdout; the JSON and the plot in the output folder."""
    from bench.report import format_latency, format_table, goals, write_json, write_png

    print()
    print(format_table(results))
    print()
    print(format_latency(latencies))
    for r in results:
        for note in dict.fromkeys(r.notes):
            print(f"  note: {r.config} / {r.target}: {note}")
        if r.target_cpu_pct is not None:
            print(f"  target CPU: {r.config} / {r.target}: {r.target_cpu_pct}% of one core (max)")
    lines = goals(results, latencies)
    for line in lines:
        print("goal: " + line)
    payload = {
        "wall_seconds": round(time.monotonic() - began),
        "machine": host,
        "target": target.kind,
        "events_per_run": args.events,
        "runs": args.runs,
        "goals": lines,
    }
    write_json(args.out / "latest.json", payload, results, latencies)
    title = f"{host['nproc']} x {host['cpu']}, Python {host['python']}, "
    title += f"{args.events} events x {args.runs} runs, target {target.kind}"
    problem = write_png(args.out / "latest.png", results, latencies, title)
    print(problem or f"wrote {args.out / 'latest.json'} and {args.out / 'latest.png'}")


if __name__ == "__main__":
    main()
