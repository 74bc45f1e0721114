"""The HTTP target every configuration posts to: nginx with the echo module on 127.0.0.1.

Three servers, one process tree: `fast` answers at once, `slow` after 50 ms (echo_sleep, a
timer, so a slow answer costs nginx no worker), `parked` answers 503 with Retry-After: 3600.
Salesforce interactions get 202 with the body the real API sends; everything else gets 200
`{"success":true}`. The fast server also logs, for bodies that carry a latency tag, the time
the request ended and nginx's own request time (see bench/README.md, "Latency").

nginx is installed from Debian when missing (root only). Without it, a small asyncio server
(bench/pytarget.py) stands in; every row then reports the target's CPU share so a reader can
see whether the target limited the figures.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import start_group, stop_group, wait_until
from worker.dev.local_redis import free_port

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
APT_PACKAGES = ("nginx-light", "libnginx-mod-http-echo")
SF_INTERACTION = (
    '{"conversationIdentifier":"c0a8e9f2-0000-4000-8000-00000000c0de",'
    '"id":"5f0c9a3e-0000-4000-8000-000000000202","workItemIds":[],"success":true}'
)
_LAT = re.compile(r"lat-(\d+)")

_CONF = """\
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
load_module {echo};
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  client_body_buffer_size 1m;
  client_max_body_size 10m;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  default_type application/json;
  map $request_body $lat_tagged {{ "~lat-[0-9]" 1; default 0; }}
  log_format lat '$msec $request_time $request_body';
  server {{
    listen 127.0.0.1:{fast} reuseport backlog=4096;
    access_log {dir}/latency.log lat buffer=256k flush=1s if=$lat_tagged;
{locations_fast}
  }}
  server {{
    listen 127.0.0.1:{slow} reuseport backlog=4096;
{locations_slow}
  }}
  server {{
    listen 127.0.0.1:{parked} reuseport backlog=4096;
    # Plain text: a Salesforce body saying "success": false would make the answer permanent.
    default_type text/plain;
    location / {{ add_header Retry-After 3600 always; return 503 'overloaded, come back later'; }}
  }}
}}
"""


def _locations(delay: str) -> str:
    # The body is read (not discarded) so that $request_body can be logged, and so that a
    # keep-alive connection is left clean for the next request.
    sleep = f"echo_sleep {delay}; " if delay else ""
    rows = [
        ("= /salesforce/api/v1/interactions", "echo_status 202; ", SF_INTERACTION),
        ("/salesforce/api/v1/", "", '{"success":true}'),
        ("~ ^/medallia/apis/v0/channels/[^/]+/messages$", "", '{"success":true}'),
    ]
    return "\n".join(
        f"    location {where} {{ {status}echo_read_request_body; {sleep}echo '{body}'; }}"
        for where, status, body in rows
    )


@dataclass
class Target:
    """A running target: its ports by name, its process, and where its latency log is."""

    kind: str
    ports: dict[str, int]
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    def url(self, server: str) -> str:
        return f"http://127.0.0.1:{self.ports[server]}"

    @property
    def latency_log(self) -> Path:
        return self.directory / "latency.log"

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None

    def arrivals(self) -> dict[int, float]:
        """{push ns tag: latest arrival (epoch s) of a request carrying it}, from the log."""
        found: dict[int, float] = {}
        if not self.latency_log.exists():
            return found
        for line in self.latency_log.read_text(errors="replace").splitlines():
            parts = line.split(" ", 2)
            if len(parts) < 3:
                continue
            # The request arrived when it ended minus nginx's own time on it.
            arrived = float(parts[0]) - float(parts[1])
            for tag in _LAT.findall(parts[2]):
                found[int(tag)] = max(found.get(int(tag), 0.0), arrived)
        return found


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def ensure_nginx() -> str | None:
    """Install nginx and its echo module from Debian if missing; None when ready, else why not."""
    if nginx_binary() and ECHO_MODULE.exists():
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "nginx or its echo module is missing and apt-get cannot be run as root here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    print(f"bench: installing {' '.join(APT_PACKAGES)} from Debian", flush=True)
    for attempt in (install, ["apt-get", "update"], install):
        subprocess.run(attempt, env=env, capture_output=True, timeout=600, check=False)
        if nginx_binary() and ECHO_MODULE.exists():
            return None
    return f"apt-get install {' '.join(APT_PACKAGES)} failed"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_target(workers: int, fine_clock: bool = False) -> Target:
    """nginx when it can be had, else the asyncio stand-in; waits until every port answers.
    `fine_clock`: the stand-in anyway, whose log stamps arrivals to the microsecond (nginx's
    to the millisecond)."""
    directory = Path(tempfile.mkdtemp(prefix="relay-bench-target-"))
    directory.chmod(0o755)  # nginx workers run as an unprivileged user and write temp files
    (directory / "body").mkdir(mode=0o777)
    ports = {"fast": free_port(), "slow": free_port(), "parked": free_port()}
    why_not = "arrivals to the microsecond asked for" if fine_clock else ensure_nginx()
    binary = nginx_binary()
    if why_not is None and binary:
        conf = directory / "nginx.conf"
        conf.write_text(
            _CONF.format(
                workers=workers,
                dir=directory,
                echo=ECHO_MODULE,
                locations_fast=_locations(""),
                locations_slow=_locations("0.05"),
                **ports,
            )
        )
        argv = [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)]
        target = Target("nginx", ports, directory)
    else:
        argv = [sys.executable, "-m", "bench.pytarget", str(directory), str(workers)]
        argv += [str(ports[name]) for name in ("fast", "slow", "parked")]
        target = Target("python-asyncio", ports, directory, notes=[f"fallback: {why_not}"])
    target.process = start_group(argv, directory / "target.out", os.environ)
    if not wait_until(lambda: all(_listening(p) for p in ports.values()), 20):
        target.stop()
        log = (directory / "target.out").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{target.kind} target did not start:\n{log}")
    time.sleep(0.2)  # let every nginx worker reach accept()
    return target
