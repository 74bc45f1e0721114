"""`python -m bench.ingress_cpu`: CPU time the ingress process and Redis spend per signed
callback, while `wrk` sends the bench's Twilio callback as fast as it is answered.

Callbacks a second move by a third between runs on a shared machine; CPU time per callback
moves by a few per cent, so it is the figure to compare two versions by: run it in each
checkout's root, alternating, and compare the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

import redis

from bench import common
from bench.ingress import _lua, callback, servers
from worker.dev.local_redis import LocalRedis


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(runs: int, seconds: int) -> list[tuple[float, float]]:
    """(ingress µs, Redis µs) per callback, one pair per run of `seconds` of wrk."""
    server = LocalRedis().start()
    work = Path(tempfile.mkdtemp(prefix="relay-bench-cpu-"))
    try:
        urls = servers(server.url, work)
        ingress = common.STARTED[-1].pid  # started last: the relay ingress
        redis_pid = int(redis.Redis.from_url(server.url).info("server")["process_id"])
        request = callback(urls["relay ingress"])
        script = str(_lua(request, work))
        found = []
        for _ in range(runs):
            before = cpu_seconds(ingress), cpu_seconds(redis_pid)
            argv = ["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", script, request.url]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
            n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
            used = cpu_seconds(ingress) - before[0], cpu_seconds(redis_pid) - before[1]
            found.append((used[0] / n * 1e6, used[1] / n * 1e6))
            print(f"  ingress {found[-1][0]:.1f} µs, Redis {found[-1][1]:.1f} µs ({n} callbacks)")
        return found
    finally:
        common.stop_all()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingress_cpu", description=__doc__)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    found = measure(args.runs, args.seconds)
    print(
        f"median per callback: ingress {statistics.median(f[0] for f in found):.1f} µs, "
        f"Redis {statistics.median(f[1] for f in found):.1f} µs"
    )


if __name__ == "__main__":
    main()
