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

from bench.common import AT_ONCE, ROOT, SLOW, Result, cpu_seconds, stop_all
from bench.events import make_events
from bench.targets import Target, start_target


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS") or 20_000))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS") or 3))
    parser.add_argument("--cap", type=float, default=150.0, help="longest run, seconds")
    parser.add_argument(
        "--slow-loop-cap",
        type=float,
        default=5.0,
        help="seconds per hand-written loop run against the 50 ms target (it does 20/s/process)",
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--parked", type=int, default=0, help="only the parked-retries check")
    parser.add_argument("--skip", default="", help="comma list of: loops,noop,relay,ingress")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    return parser.parse_args()


def mark(target: Target) -> tuple[float, float]:
    """The target's CPU seconds and the clock, before a measurement."""
    return cpu_seconds(target.pids()), time.monotonic()


def note_share(result: Result, target: Target, before: tuple[float, float]) -> None:
    """Keep the largest share of one core the target used during any run of this row."""
    cpu, wall = before
    share = (cpu_seconds(target.pids()) - cpu) / (time.monotonic() - wall) * 100
    result.target_cpu_pct = round(max(result.target_cpu_pct or 0.0, share), 1)


def run_loops(redis_url: str, configs: dict[str, Path], target: Target, args: Any) -> list[Result]:
    from bench.loops import run_loop

    raws = [json.dumps(e) for e in make_events(args.events, "loop")]
    results = []
    for name, config in configs.items():
        cap = args.cap if name == AT_ONCE else args.slow_loop_cap
        for processes in (1, 2):
            result = Result(f"hand-written loop {processes}p", name)
            cmds = 0
            for _ in range(args.runs):
                before = mark(target)
                run = run_loop(redis_url, str(config), raws, processes, cap)
                note_share(result, target, before)
                result.rates.append(run.rate)
                result.events.append(run.events)
                result.rss_mb = run.rss_mb
                cmds += run.redis_cmds
                if run.failures:
                    result.notes.append(f"{run.failures} non-2xx answers")
            result.cmds_per_event = cmds / max(sum(result.events), 1)
            results.append(result)
            print(f"  {result.config} / {name}: {result.median:,.0f} events/s", flush=True)
    return results


def run_noops(client: Any, target: Target, logs: Path, args: Any) -> list[Result]:
    from bench.noop import NoopSetup, run_noop, stash

    events = make_events(args.events, "noop")
    publish_rate = stash(client, events)
    results = []
    for setup in (
        NoopSetup("celery no-op prefork 2", "prefork", 2, 1),
        NoopSetup(f"celery no-op threads 16 x{os.cpu_count()}", "threads", 16, os.cpu_count() or 1),
    ):
        rates, rss, cmds = run_noop(client, setup, args.runs, len(events), args.cap, logs)
        result = Result(setup.label, "(none)", rates=rates, events=[len(events)] * len(rates))
        result.rss_mb, result.cmds_per_event = rss, cmds
        result.notes.append(f"messages published beforehand at {publish_rate:,.0f}/s")
        results.append(result)
        print(f"  {result.config}: {result.median:,.0f} events/s", flush=True)
    return results


def run_relay(
    client: Any, configs: dict[str, Path], target: Target, logs: Path, args: Any
) -> list[Result]:
    from bench.relay_runs import Fleet, latency, throughput

    results = []
    workers = os.cpu_count() or 1
    for name, config in configs.items():
        result = Result(f"relay defaults, {workers} workers", name)
        fleet = Fleet(client, config, workers, logs)
        try:
            cmds, pushes = 0, []
            for i in range(args.runs):
                events = make_events(args.events, f"relay-{config.stem}-{i}", seed=5 + i)
                before = mark(target)
                run = throughput(fleet, events, args.cap)
                note_share(result, target, before)
                result.rates.append(run.rate)
                result.events.append(run.settled)
                cmds += run.redis_cmds
                pushes.append(run.push_rate)
                if run.settled < len(events):
                    result.notes.append(f"run {i}: {run.settled} settled within {args.cap}s")
            result.cmds_per_event = cmds / max(sum(result.events), 1)
            result.notes.append(f"producer pushed at {statistics.median(pushes):,.0f} events/s")
            if name == AT_ONCE:
                rate = result.median / 2
                p50, p99, samples, notes = latency(fleet, target, rate, args.latency_seconds)
                result.latency_p50_ms = None if p50 is None else round(p50, 2)
                result.latency_p99_ms = None if p99 is None else round(p99, 2)
                result.latency_rate, result.latency_samples = round(rate, 1), samples
                result.notes.extend(notes)
            result.rss_mb = fleet.rss_mb()
        finally:
            fleet.stop()
        results.append(result)
        print(f"  {result.config} / {name}: {result.median:,.0f} events/s", flush=True)
    return results


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
    results = _measure(client, redis_url, configs, target, workdir, args)
    _report(results, target, host, args, began)
    if "ingress" not in args.skip.split(","):
        from bench.ingress import run_ingress

        relay = [r.median for r in results if r.config.startswith("relay") and r.target == AT_ONCE]
        args.seconds = args.latency_seconds
        print("\ningress (one process) beside a bare server on the same stack:", flush=True)
        rows = run_ingress(redis_url, workdir, args, relay[0] if relay else 2041.0)
        (args.out / "ingress.json").write_text(json.dumps(rows, indent=2) + "\n")


def _measure(
    client: Any,
    redis_url: str,
    configs: dict[str, Path],
    target: Target,
    workdir: Path,
    args: Any,
) -> list[Result]:
    """Every configuration the arguments do not skip, with ratios to the baseline."""
    skip = set(filter(None, args.skip.split(",")))
    results: list[Result] = []
    if "loops" not in skip:
        results += run_loops(redis_url, configs, target, args)
    if "noop" not in skip:
        results += run_noops(client, target, workdir, args)
    if "relay" not in skip:
        results += run_relay(client, configs, target, workdir, args)
    from bench.report import add_ratios

    add_ratios(results)
    return results


def _report(
    results: list[Result], target: Target, host: dict[str, Any], args: Any, began: float
) -> None:
    """The table, notes and goals on stdout; the JSON and the plot in the output folder."""
    from bench.report import format_table, goals, write_json, write_png

    print()
    print(format_table(results))
    for r in results:
        for note in dict.fromkeys(r.notes):
            print(f"  note: {r.config} / {r.target}: {note}")
        if r.target_cpu_pct is not None:
            print(f"  target CPU: {r.config} / {r.target}: {r.target_cpu_pct}% of one core (max)")
    for line in goals(results):
        print("goal: " + line)
    payload = {
        "wall_seconds": round(time.monotonic() - began),
        "machine": host,
        "target": target.kind,
        "events_per_run": args.events,
        "runs": args.runs,
        "goals": goals(results),
    }
    write_json(args.out / "latest.json", payload, results)
    title = f"{host['nproc']} x {host['cpu']}, Python {host['python']}, "
    title += f"{args.events} events x {args.runs} runs, target {target.kind}"
    problem = write_png(args.out / "latest.png", results, title)
    print(problem or f"wrote {args.out / 'latest.json'} and {args.out / 'latest.png'}")


if __name__ == "__main__":
    main()
