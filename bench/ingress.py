"""`python -m bench.ingress` (and a part of `make bench`): one ingress process taking signed
callbacks, beside a bare server on the same stack that only RPUSHes the body (the ceiling).

Both are uvicorn with httptools and uvloop, one process each, on a throwaway Redis. The load is
one correctly signed Twilio status callback (form body, `relay_ref` in the URL), sent on 64
keep-alive connections by `wrk` (Debian's, installed when missing and run as root) or, without
it, by `bench.loadgen`; latency at half the ingress's rate by `hey` (Debian's, likewise), else
`bench.loadgen`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.common import ROOT, percentile, start_group, stop_all, wait_until
from bench.ingress_flood import flood_rows, report
from bench.loadgen import prepare
from bench.loadgen import run as load
from worker.dev.callbacks import Callback, Message, twilio
from worker.dev.local_redis import free_port

TOKEN = "bench-twilio-auth-token-0123456789"
CONFIG = """\
[targets.sf]
kind = "salesforce"
base_url = "http://127.0.0.1:9/salesforce"
org_id = "00D5g000004xyzA"
authorization_context = "Partner1_ChannelDefinition1"
auth = { type = "bearer", token = "${BENCH_SF_TOKEN}" }

[sources.tw]
kind = "twilio"
auth_token = "${BENCH_TWILIO_TOKEN}"
target = "sf"
receipts_per_second = 1000000  # the bench measures capacity, not the default quota (1,000/s)

[sources.wa]
kind = "whatsapp"
app_secret = "${BENCH_WA_SECRET}"
verify_token = "${BENCH_WA_SECRET}"
target = "sf"

[sources.ib]
kind = "infobip"
token = "${BENCH_IB_TOKEN}"
target = "sf"
"""
REFERENCE = {"message_ids": ["0Mw5g00000A1"], "channel": "72a6a4ec-acbc-44f6-b2b9-e444248ca843"}
UVICORN = ["-m", "uvicorn", "--loop", "uvloop", "--no-access-log"]
# The ingress as deployed (its protocol: read deadline, header cap); the bare server on
# uvicorn's own httptools protocol.
PRODUCTION = [
    "--http",
    "worker.ingress.protocol:GuardedHttp",
    "--limit-concurrency",
    "1000",
    "--timeout-keep-alive",
    "75",
]
CONNECTIONS = 64


def servers(redis_url: str, workdir: Path) -> dict[str, str]:
    """Start the bare server and the ingress (the README's production command, one worker);
    their base URLs once they answer."""
    config = workdir / "ingress.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RELAY_CONFIG": str(config),
        "RELAY_KEY_PREFIX": "bench-ingress",
        "BENCH_TWILIO_TOKEN": TOKEN,
        "BENCH_SF_TOKEN": "x",
        "BENCH_WA_SECRET": "bench-meta-app-secret",
        "BENCH_IB_TOKEN": "bench-infobip-token",
    }
    apps = {
        "bare ASGI + RPUSH": ["--http", "httptools", "bench.bare_ingress:app"],
        "relay ingress": [*PRODUCTION, "--factory", "worker.ingress.app:create_app"],
    }
    urls = {}
    for name, app in apps.items():
        port = free_port()
        argv = [sys.executable, *UVICORN, "--port", str(port), "--log-level", "warning", *app]
        start_group(argv, workdir / f"{name.split()[0]}.log", env)
        urls[name] = f"http://127.0.0.1:{port}"
        if not wait_until(lambda p=port: _answers(p), 30):
            raise RuntimeError(f"{name} did not start; see {workdir}")
    return urls


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def callback(base: str) -> Callback:
    return twilio(
        f"{base}/v1/receipts/tw", TOKEN, [Message("SMbench0001", "delivered", reference=REFERENCE)]
    )


def tool(name: str) -> str | None:
    """`name` (wrk, hey) from PATH, installed from Debian when missing and we may (root)."""
    if shutil.which(name) or os.geteuid() != 0 or not shutil.which("apt-get"):
        return shutil.which(name)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", name]
    for argv in (install, ["apt-get", "update"], install):
        subprocess.run(argv, env=env, capture_output=True, timeout=600, check=False)
        if shutil.which(name):
            break
    return shutil.which(name)


def _lua(request: Callback, workdir: Path) -> Path:
    script = workdir / "callback.lua"
    lines = [f'wrk.method = "{request.method}"', f"wrk.body = [==[{request.body.decode()}]==]"]
    lines += [f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in request.headers.items()]
    script.write_text("\n".join(lines) + "\n")
    return script


def throughput(
    wrk: str | None, request: Callback, seconds: float, workdir: Path
) -> tuple[float, int]:
    """Answers a second, and how many were not 2xx."""
    if wrk is None:
        raw = prepare(request.url, request.method, request.headers, request.body)
        result = load(request.url, raw, CONNECTIONS, seconds)
        return result.rate, result.failed
    argv = [
        wrk,
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{int(seconds)}s",
        "-s",
        str(_lua(request, workdir)),
        request.url,
    ]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, int(bad.group(1)) if bad else 0


def latency(
    request: Callback, rate: float, seconds: float, workdir: Path
) -> tuple[float, float, int]:
    """p50 and p99 in ms at `rate` requests a second, and the failures: `hey` (Go, 10
    keep-alive workers at rate/10 each) when it can be had, else bench.loadgen."""
    hey = tool("hey")
    if hey is None:
        raw = prepare(request.url, request.method, request.headers, request.body)
        result = load(request.url, raw, 16, seconds, rate)
        ms = [s * 1000 for s in result.latencies]
        return percentile(ms, 50), percentile(ms, 99), result.failed
    (workdir / "body").write_bytes(request.body)
    workers = 10
    argv = [
        hey,
        "-z",
        f"{int(seconds)}s",
        "-c",
        str(workers),
        "-q",
        str(max(1, round(rate / workers))),
    ]
    argv += ["-m", request.method, "-D", str(workdir / "body"), "-cpus", "1"]
    for name, value in request.headers.items():
        argv += ["-T", value] if name.lower() == "content-type" else ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*argv, request.url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    at = dict(re.findall(r"(\d+)% in ([\d.]+) secs", out))
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    failed = sum(int(n) for code, n in codes.items() if not code.startswith("2"))
    return float(at["50"]) * 1000, float(at["99"]) * 1000, failed


def measure(urls: dict[str, str], client: redis.Redis, args: Any, workdir: Path) -> dict[str, Any]:
    wrk = tool("wrk")
    rows: dict[str, Any] = {}
    for name, base in urls.items():
        rates, failures = [], 0
        for _ in range(args.runs):
            client.flushdb()
            rate, bad = throughput(wrk, callback(base), args.seconds, workdir)
            rates.append(rate)
            failures += bad
        rows[name] = {"rates": rates, "median": statistics.median(rates), "non_2xx": failures}
        each = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"  {name}: {statistics.median(rates):,.0f} callbacks/s ({each})", flush=True)
    half = rows["relay ingress"]["median"] / 2
    for name, base in urls.items():
        samples = [latency(callback(base), half, args.seconds, workdir) for _ in range(args.runs)]
        client.flushdb()
        rows[name]["latency_rate"] = round(half)
        rows[name]["p50_ms"] = statistics.median(s[0] for s in samples)
        rows[name]["p99_ms"] = statistics.median(s[1] for s in samples)
        rows[name]["latency_failures"] = sum(s[2] for s in samples)
    rows["load generator"] = "wrk -t2 -c64" if wrk else "bench.loadgen, 64 connections"
    rows["latency client"] = "hey -c 10" if tool("hey") else "bench.loadgen, 16 connections"
    return rows


def goals(rows: dict[str, Any], delivery_rate: float) -> list[str]:
    relay, bare = rows["relay ingress"], rows["bare ASGI + RPUSH"]
    ratio = relay["median"] / bare["median"]
    return [
        f"ingress / bare server {ratio:.2f} (goal >= 0.8, {'met' if ratio >= 0.8 else 'NOT met'})",
        f"ingress {relay['median']:,.0f}/s vs the workers' delivery rate {delivery_rate:,.0f}/s "
        f"({'met' if relay['median'] >= delivery_rate else 'NOT met'})",
        f"p99 at {relay['latency_rate']:,}/s: {relay['p99_ms']:.1f} ms (goal < 10 ms, "
        f"{'met' if relay['p99_ms'] < 10 else 'NOT met'})",
    ]


def run_ingress(redis_url: str, workdir: Path, args: Any, delivery_rate: float) -> dict[str, Any]:
    """Both servers measured; the figures and goal lines (also printed)."""
    urls = servers(redis_url, workdir)
    client = redis.Redis.from_url(redis_url)
    rows = measure(urls, client, args, workdir)
    print(f"{'server':<20}{'callbacks/s median (min-max)':>32}{'p50/p99 ms at half':>22}")
    for name in urls:
        r = rows[name]
        spread = f"{r['median']:,.0f} ({min(r['rates']):,.0f}-{max(r['rates']):,.0f})"
        print(f"{name:<20}{spread:>32}{r['p50_ms']:>13.2f} / {r['p99_ms']:.2f}")
    rows["goals"] = goals(rows, delivery_rate)
    for line in rows["goals"]:
        print("goal: " + line)
    seconds = getattr(args, "flood_seconds", 5.0)
    print(f"\nthe ingress under a flood ({seconds:g} s a run, {args.runs} runs):", flush=True)
    wrk = tool("wrk")
    rows["flood"] = flood_rows(
        urls["relay ingress"],
        callback(urls["relay ingress"]),
        seconds,
        args.runs,
        workdir,
        lambda request, s: throughput(wrk, request, s, workdir),
    )
    report(rows["flood"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingress", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flood-seconds", type=float, default=5.0, help="a run of the flood rows")
    parser.add_argument("--delivery-rate", type=float, default=2041.0, help="the relay's, events/s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()
    from worker.dev.local_redis import LocalRedis

    server = LocalRedis().start()
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-ingress-"))
    try:
        rows = run_ingress(server.url, workdir, args, args.delivery_rate)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "ingress.json").write_text(json.dumps(rows, indent=2) + "\n")
    finally:
        stop_all()
        server.stop()
        print(f"logs in {workdir}; {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
