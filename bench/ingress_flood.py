"""The ingress under a flood (a row of `make bench`'s ingress part): signed callbacks/s and
`/healthz` p99, quiet and while 4 clients post unauthenticated 1 MiB bodies (`bench.flood`, a
process of its own), a few seconds each, `--runs` times, medians.

The callbacks go as in the ingress's throughput row (wrk, else `bench.loadgen`); /healthz is
asked every 20 ms on a new connection each time (as a kubelet does) by a thread beside them.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import percentile, start_group
from worker.dev.callbacks import Callback

FLOODING = "4 clients flooding unauthenticated 1 MiB posts"
QUIET = "no flood"


def health_latencies(base: str, until: float) -> list[float]:
    """/healthz answer times in ms, one every 20 ms until `until`; a failure counts 10 s."""
    parts = urlsplit(base)
    found: list[float] = []
    while time.monotonic() < until:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            connection.request("GET", "/healthz")
            ok = connection.getresponse().status == 200
        except OSError:
            ok = False
        finally:
            connection.close()
        found.append((time.perf_counter() - started) * 1000 if ok else 10_000.0)
        time.sleep(0.02)
    return found


def one_run(
    base: str, request: Callback, seconds: float, workdir: Path, flooding: bool, throughput: Any
) -> tuple[float, float, int]:
    """Callbacks/s, /healthz p99 (ms) and the flood's posts, for one run."""
    attack = None
    if flooding:
        argv = [sys.executable, "-m", "bench.flood", base, "--seconds", str(seconds + 1)]
        attack = start_group(argv, workdir / "flood.out", dict(os.environ))
        time.sleep(0.5)  # the flood is under way before the clock starts
    until = time.monotonic() + seconds
    health: list[float] = []
    prober = threading.Thread(target=lambda: health.extend(health_latencies(base, until)))
    prober.start()
    rate, _ = throughput(request, seconds)
    prober.join(timeout=seconds + 30)
    posts = 0
    if attack is not None:
        attack.wait(timeout=seconds + 60)
        posts = json.loads((workdir / "flood.out").read_text() or "{}").get("posts", 0)
    return rate, percentile(health, 99), posts


def flood_rows(
    base: str, request: Callback, seconds: float, runs: int, workdir: Path, throughput: Any
) -> dict[str, Any]:
    """Both rows, each `runs` times: medians and every run's figures."""
    rows: dict[str, Any] = {}
    for name, flooding in ((QUIET, False), (FLOODING, True)):
        samples = [
            one_run(base, request, seconds, workdir, flooding, throughput) for _ in range(runs)
        ]
        rows[name] = {
            "rates": [round(s[0]) for s in samples],
            "median": statistics.median(s[0] for s in samples),
            "healthz_p99_ms": [round(s[1], 1) for s in samples],
            "healthz_p99_ms_median": statistics.median(s[1] for s in samples),
            "flood_posts_per_s": round(statistics.median(s[2] for s in samples) / seconds),
        }
    return rows


def report(rows: dict[str, Any]) -> None:
    print(f"{'ingress':<50}{'callbacks/s median (runs)':>30}{'/healthz p99 ms':>18}")
    for name, row in rows.items():
        each = ", ".join(f"{r:,}" for r in row["rates"])
        print(
            f"{name:<50}{row['median']:>12,.0f} ({each}){row['healthz_p99_ms_median']:>14.1f}",
            flush=True,
        )
    flooded = rows[FLOODING]
    print(f"  the flood: {flooded['flood_posts_per_s']:,} posts/s (1 MiB each) refused")
