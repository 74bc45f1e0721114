"""The benchmark's outputs: a table on stdout, bench-results/latest.json and latest.png."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import AT_ONCE, SLOW, Result

HEADERS = (
    "configuration",
    "target",
    "events/s median (min-max)",
    "x loop 2p",
    "latency p50/p99 ms",
    "worker RSS MB",
    "Redis cmds/event",
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
        latency = "-"
        if r.latency_p50_ms is not None and r.latency_p99_ms is not None:
            latency = f"{r.latency_p50_ms:.1f} / {r.latency_p99_ms:.1f}"
        table.append(
            (
                r.config,
                r.target,
                rate,
                _cell(r.ratio, 2),
                latency,
                _cell(r.rss_mb, 0),
                _cell(r.cmds_per_event, 2),
            )
        )
    return table


def format_table(results: list[Result]) -> str:
    body = rows(results)
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(HEADERS)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(HEADERS), rule, *(line(row) for row in body)])


def write_json(path: Path, payload: dict[str, Any], results: list[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        **payload,
        "results": [{**asdict(r), "median": round(r.median, 1)} for r in results],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_png(path: Path, results: list[Result], title: str) -> str | None:
    """Throughput (median, min-max whiskers) and latency bars; None, or why there is no PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on a CI box
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no PNG written"
    measured = [r for r in results if r.rates]
    labels = [f"{r.config}\n{r.target}" for r in measured]
    medians = [r.median for r in measured]
    low = [r.median - min(r.rates) for r in measured]
    high = [max(r.rates) - r.median for r in measured]
    timed = [r for r in results if r.latency_p50_ms is not None]
    fig, axes = plt.subplots(
        1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [3, 1]}, layout="constrained"
    )
    colours = ["tab:red" if "relay" in r.config else "tab:blue" for r in measured]
    axes[0].bar(labels, medians, yerr=[low, high], capsize=4, color=colours)
    axes[0].set_ylabel("events/s (median of runs, min-max)")
    axes[0].set_title("Throughput")
    axes[0].tick_params(axis="x", labelrotation=60, labelsize=8)
    if timed:
        names = [f"{r.config}\n@{r.latency_rate or 0:.0f}/s" for r in timed]
        xs = range(len(timed))
        axes[1].bar([x - 0.2 for x in xs], [r.latency_p50_ms or 0 for r in timed], 0.4, label="p50")
        axes[1].bar([x + 0.2 for x in xs], [r.latency_p99_ms or 0 for r in timed], 0.4, label="p99")
        axes[1].set_xticks(list(xs), names, fontsize=8)
        axes[1].set_xlim(-1, len(timed))  # one configuration: keep its bars narrow
        axes[1].axhline(20, color="grey", linestyle="--", linewidth=1, label="goal p99 20 ms")
        axes[1].legend(loc="upper left", fontsize=8)
    axes[1].set_ylabel("push-to-post latency, ms")
    axes[1].set_title("Latency at half the relay's top rate")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def add_ratios(results: list[Result]) -> None:
    """Each row against the 2-process loop on the same target (no-op rows: the at-once one)."""
    base = {r.target: r.median for r in results if r.config == "hand-written loop 2p"}
    for r in results:
        reference = base.get(r.target) or base.get(AT_ONCE)
        if reference:
            r.ratio = r.median / reference


def goals(results: list[Result]) -> list[str]:
    relay = {r.target: r for r in results if r.config.startswith("relay")}
    loop = {r.target: r for r in results if r.config == "hand-written loop 2p"}
    lines = []
    if AT_ONCE in relay and AT_ONCE in loop:
        ratio = relay[AT_ONCE].median / loop[AT_ONCE].median
        lines.append(f"relay / loop 2p at once = {ratio:.2f} (goal >= 1.5): {_ok(ratio >= 1.5)}")
    if AT_ONCE in relay and SLOW in relay:
        ratio = relay[SLOW].median / relay[AT_ONCE].median
        lines.append(f"relay 50 ms / at once = {ratio:.2f} (goal >= 0.9): {_ok(ratio >= 0.9)}")
    p99 = relay[AT_ONCE].latency_p99_ms if AT_ONCE in relay else None
    if p99 is not None:
        lines.append(f"relay latency p99 = {p99:.1f} ms (goal < 20): {_ok(p99 < 20)}")
    return lines


def _ok(met: bool) -> str:
    return "met" if met else "NOT met"
