"""`python -m bench.latency_stages`: where a lone event's push-to-post time goes.

Starts what `make bench` starts (a throwaway Redis, the nginx target, one relay worker per
core), paces single pushes as the latency rows do (`lat-<ns>` in each event's id and message
ids), and watches Redis with MONITOR, which stamps every command Redis runs to the
microsecond. No code of the relay is changed or instrumented. Per event it finds:

- **push**: Redis runs the producer's push (the clock starts just before `push_events`);
- **take**: Redis runs the first feeder take script after it (the worker's BLMOVE was woken,
  and the script wraps the item in the lane);
- **admission**: Redis runs the admission script holding the event's message keys (the lane
  thread got the bundle, read it, ran the schema and the translator);
- **post**: the target got the request's head (the bench's asyncio target, whose log has
  microseconds; nginx's has milliseconds);
- **settle**: Redis runs the bundle's writes holding the event's message keys.

MONITOR costs Redis a little per command, so the figures read slightly high; only the
shares matter. At a tenth of the loop's rate events come ~8 ms apart, so "the first take
after a push" is the take of that push.
"""

from __future__ import annotations

import argparse
import bisect
import re
import statistics
import threading
import time
from typing import Any

from bench.common import percentile
from bench.standalone import relay_fleet

STAGES = ("push", "take", "admission", "post", "settle")
_TAG = re.compile(r"lat-(\d+)")


def _arguments() -> Any:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_stages")
    parser.add_argument("--rate", type=float, default=120.0, help="pushes/s (a tenth of the loop)")
    parser.add_argument("--seconds", type=float, default=10.0)
    return parser.parse_args()


class Monitor:
    """Every command Redis runs, with Redis's own time stamp, from a thread of its own."""

    def __init__(self, url: str) -> None:
        import redis

        self.commands: list[tuple[float, str]] = []
        self._client = redis.Redis.from_url(url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._client.monitor() as monitor:
            for command in monitor.listen():
                if command.get("client_type") != "lua":
                    self.commands.append((float(command["time"]), str(command["command"])))
                if self._stop.is_set():
                    return

    def stop(self) -> None:
        self._stop.set()
        self._client.ping()  # one more command wakes the listener
        self._thread.join(timeout=5)


def stages(commands: list[tuple[float, str]], arrivals: dict[int, float]) -> dict[int, dict]:
    """{push ns: {stage: epoch s}} for every event seen through all its stages."""
    seen: dict[int, dict[str, float]] = {}
    takes = [at for at, text in commands if "relay:lane:" in text and "EVAL" in text[:8]]
    for at, text in commands:
        tags = {int(t) for t in _TAG.findall(text)}
        for ns in tags:
            event = seen.setdefault(ns, {})
            if "relay:inbox" in text and "push" not in event:
                event["push"] = at
            elif "relay:msg:" in text and "push" in event:
                event.setdefault("admission", at)
                if at > event["admission"]:
                    event.setdefault("settle", at)
    for ns, event in seen.items():
        first = bisect.bisect_left(takes, event.get("push", float("inf")))
        if first < len(takes):  # MONITOR's stamps come in order: the first take after the push
            event["take"] = takes[first]
        if ns in arrivals:
            event["post"] = arrivals[ns]
    return {ns: e for ns, e in seen.items() if all(s in e for s in STAGES)}


def report(found: dict[int, dict[str, float]]) -> None:
    print(f"{len(found)} events seen through every stage (ms; push is from the producer's clock)")
    print("| step | p50 | p90 | p99 | since push, p50 |")
    print("|---|---|---|---|---|")
    previous = None
    for stage in STAGES:
        since = [(e[stage] - ns / 1e9) * 1000 for ns, e in found.items()]
        step = (
            since if previous is None else [(e[stage] - e[previous]) * 1000 for e in found.values()]
        )
        name = f"{previous or 'producer'} -> {stage}"
        figures = " | ".join(f"{percentile(step, q):.2f}" for q in (50, 90, 99))
        print(f"| {name} | {figures} | {statistics.median(since):.2f} |")
        previous = stage
    whole = [(e["post"] - ns / 1e9) * 1000 for ns, e in found.items()]
    figures = " | ".join(f"{percentile(whole, q):.2f}" for q in (50, 90, 99))
    print(f"| producer -> post (the latency rows' figure) | {figures} | |")


def main() -> None:
    args = _arguments()
    from bench.relay_runs import _paced_pushes

    with relay_fleet("stages", fine_clock=True) as setup:
        monitor = Monitor(setup.redis_url)
        _paced_pushes(args.rate, int(args.rate * args.seconds))
        time.sleep(2.0)  # the last settles, and the target's log is written
        monitor.stop()
        found = stages(monitor.commands, setup.target.arrivals())
    report(found)


if __name__ == "__main__":
    main()
