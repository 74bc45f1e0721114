"""`python -m bench.profile`: where a relay worker spends its time, with py-spy.

Starts what `make bench` starts (a throwaway Redis, the nginx target, one relay worker per
core), then records one worker with py-spy while it works: `--mode throughput` pushes N events
at once (as the throughput rows do), `--mode latency` paces single pushes (as the latency row
does). Prints the top functions by own and total time, and writes py-spy's flame graph (SVG)
and raw folded stacks beside the bench results. Needs `pip install py-spy` and ptrace rights.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.events import make_event, make_events
from bench.standalone import relay_fleet


def _arguments() -> Any:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--mode", choices=("throughput", "latency"), default="throughput")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=600.0, help="latency mode: pushes/s")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument(
        "--wall", action="store_true", help="every thread's wall time, not only GIL holders (CPU)"
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"profile-{args.mode}.txt"
    with relay_fleet("profile") as setup:
        record = _record(setup.fleet.processes[0].pid, raw, args)
        time.sleep(0.5)
        _load(args)
        record.wait(timeout=args.seconds + 60)
    summarize(raw)


def _record(pid: int, raw: Path, args: Any) -> subprocess.Popen[bytes]:
    """py-spy recording the worker `pid` for the run, in the background."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(args.seconds))]
    argv += ["--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"]
    argv += [] if args.wall else ["--gil"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _load(args: Any) -> None:
    """All events at once (throughput), or single pushes at `args.rate` (latency)."""
    from worker.intake.push import push_events

    if args.mode == "throughput":
        push_events(make_events(args.events, "profile"))
        return
    rng = random.Random(3)
    start = time.monotonic()
    for i in range(int(args.rate * args.seconds)):
        pause = start + i / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        push_events([make_event(rng, f"p-{i}")])


def summarize(raw: Path, top: int = 25) -> None:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        # "func (path/file.py:123)" -> "func (file.py)": lines of one function add up
        frames = [re.sub(r"\((?:.*/)?([^/:]+):\d+\)", r"(\1)", f) for f in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"{samples} samples (non-idle) in {raw}")
    print("-- own time --")
    for frame, n in own.most_common(top):
        print(f"{n / samples * 100:5.1f}%  {frame}")
    print("-- total time --")
    for frame, n in total.most_common(top):
        print(f"{n / samples * 100:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
