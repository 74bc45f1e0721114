"""The benchmark's outputs: a table on stdout, bench-results/latest.json and latest.png."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import AT_ONCE, SLOW, Latency, Result

HEADERS = (
    "configuration",
    "target",
    "events/s median (min-max)",
    "x loop, as many processes",
    "CPU ms/event",
    "RSS MB",
    "Redis cmds/event",
)
LATENCY_HEADERS = (
    "pushes/s (share of the loop's rate)",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "events",
    "worker CPU ms/event",
)


def machine() -> dict[str, Any]:
    """What the figures came from: they only compare within one run on one machine."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    for name, argv in (("redis", ["redis-server", "--version"]), ("nginx", ["nginx", "-v"])):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            info[name] = (done.stdout + done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            info[name] = "not found"
    return info


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def rows(results: list[Result]) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = []
    for r in results:
        rate = "-"
        if r.rates:
            rate = f"{r.median:,.0f} ({min(r.rates):,.0f}-{max(r.rates):,.0f})"
        table.append(
            (
                r.config,
                r.target,
                rate,
                _cell(r.ratio, 2),
                _cell(r.cpu_ms_per_event, 3),
                _cell(r.rss_mb, 0),
                _cell(r.cmds_per_event, 2),
            )
        )
    return table


def _markdown(headers: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in body)])


def format_table(results: list[Result]) -> str:
    return _markdown(HEADERS, rows(results)) if results else "(no throughput runs)"


def format_latency(latencies: list[Latency]) -> str:
    body = [
        (
            f"{x.rate:,.0f} ({x.share:.0%})",
            *(_cell(v) for v in (x.p50, x.p90, x.p99)),
            str(x.samples),
            "-" if x.cpu_ms is None else f"{x.cpu_ms:.2f}",
        )
        for x in latencies
    ]
    return _markdown(LATENCY_HEADERS, body) if body else "(no latency runs)"


def write_json(
    path: Path, payload: dict[str, Any], results: list[Result], latencies: list[Latency]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        **payload,
        "results": [{**asdict(r), "median": round(r.median, 1)} for r in results],
        "latency": [asdict(x) for x in latencies],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_png(
    path: Path, results: list[Result], latencies: list[Latency], title: str
) -> str | None:
    """Throughput (median, min-max whiskers) and latency bars; None, or why there is no PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on a CI box
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no PNG written"
    fig, axes = plt.subplots(
        1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [3, 1]}, layout="constrained"
    )
    _throughput_bars(axes[0], [r for r in results if r.rates])
    _latency_bars(axes[1], latencies)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def _throughput_bars(axis: Any, measured: list[Result]) -> None:
    labels = [f"{r.config}\n{r.target}" for r in measured]
    low = [r.median - min(r.rates) for r in measured]
    high = [max(r.rates) - r.median for r in measured]
    colours = ["tab:red" if "relay" in r.config else "tab:blue" for r in measured]
    axis.bar(labels, [r.median for r in measured], yerr=[low, high], capsize=4, color=colours)
    axis.set_ylabel("events/s (median of runs, min-max)")
    axis.set_title("Throughput")
    axis.tick_params(axis="x", labelrotation=60, labelsize=8)


def _latency_bars(axis: Any, latencies: list[Latency]) -> None:
    xs = range(len(latencies))
    for offset, name in ((-0.25, "p50"), (0, "p90"), (0.25, "p99")):
        values = [getattr(x, name) or 0 for x in latencies]
        axis.bar([x + offset for x in xs], values, 0.25, label=name)
    axis.set_xticks(list(xs), [f"{x.rate:,.0f}/s\n{x.share:.0%}" for x in latencies], fontsize=8)
    axis.axhline(
        P99_GOALS[0.5], color="grey", linestyle="--", linewidth=1, label="goal p99 5 ms at 50 %"
    )
    axis.axhline(
        P99_GOALS[0.1], color="grey", linestyle=":", linewidth=1, label="goal p99 2 ms at 10 %"
    )
    axis.legend(loc="upper left", fontsize=8)
    axis.set_ylabel("push-to-post latency, ms")
    axis.set_title("Latency of single pushes, share of the loop's rate")


def add_ratios(results: list[Result]) -> None:
    """Each relay row against the loop with as many processes on the same target."""
    base = {(r.target, r.processes): r.median for r in results if r.config.startswith("hand")}
    for r in results:
        reference = base.get((r.target, r.processes))
        if reference:
            r.ratio = r.median / reference


RATIO_GOAL = 3.5  # relay / loop with as many processes, at once
SLOW_GOAL = 0.9  # relay against the 50 ms target / at once, in every round
CPU_GOAL = 0.25  # worker CPU ms per event, one worker per core, at once
P99_GOALS = {0.1: 2.0, 0.5: 5.0}  # push-to-post p99 ms at a share of the loop's rate


def goals(results: list[Result], latencies: list[Latency]) -> list[str]:
    """The goals, each with its figure from this run."""
    cores = max((r.processes for r in results), default=1)
    relay = {
        r.target: r
        for r in results
        if r.config.startswith("relay") and r.processes == cores and "task events" not in r.config
    }
    lines = []
    if AT_ONCE in relay and relay[AT_ONCE].ratio:
        ratio = relay[AT_ONCE].ratio
        lines.append(
            f"relay / loop, {cores} processes each, at once = {ratio:.2f} "
            f"(goal >= {RATIO_GOAL}): {_ok(ratio >= RATIO_GOAL)}"
        )
    if AT_ONCE in relay and relay[AT_ONCE].cpu_ms_per_event:
        cpu = relay[AT_ONCE].cpu_ms_per_event
        lines.append(
            f"worker CPU per event, {cores} workers, at once = {cpu:.3f} ms "
            f"(goal <= {CPU_GOAL}): {_ok(cpu <= CPU_GOAL)}"
        )
    if AT_ONCE in relay and SLOW in relay and relay[AT_ONCE].median:
        lines.append(_slow_line(relay[SLOW], relay[AT_ONCE]))
    events_on = [r for r in results if "task events" in r.config]
    if events_on and AT_ONCE in relay and relay[AT_ONCE].cpu_ms_per_event:
        on, off = events_on[0].cpu_ms_per_event, relay[AT_ONCE].cpu_ms_per_event
        lines.append(
            f"task events on: {on:.3f} CPU ms/event against {off:.3f} off "
            f"({(on / off - 1) * 100:+.0f} %), {events_on[0].median / relay[AT_ONCE].median:.2f}x "
            "the events/s (no goal: the price of Flower's view)"
        )
    for x in latencies:
        limit = P99_GOALS.get(x.share)
        if limit is not None and x.p99 is not None:
            lines.append(
                f"p99 at {x.share:.0%} of the loop's rate ({x.rate:,.0f}/s) = {x.p99:.1f} ms "
                f"(goal < {limit:g}): {_ok(x.p99 < limit)}"
            )
    return lines


def _slow_line(slow: Result, at_once: Result) -> str:
    """50 ms / at once: the medians, and each round's (runs alternate targets, round by round)."""
    ratio = slow.median / at_once.median
    rounds = [s / a for s, a in zip(slow.rates, at_once.rates, strict=False) if a]
    each = ", ".join(f"{r:.2f}" for r in rounds)
    met = bool(rounds) and min(rounds) >= SLOW_GOAL
    goal = f"(goal >= {SLOW_GOAL} in each): {_ok(met)}"
    return f"relay 50 ms / at once = {ratio:.2f}, rounds {each} {goal}"


def _ok(met: bool) -> str:
    return "met" if met else "NOT met"
