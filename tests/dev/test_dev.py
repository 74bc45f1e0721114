"""`relay dev` (what `make run` runs) as a user runs it: on its own embedded Redis, printing
only addresses of its own, lines that work as printed, and stopping cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.dev.owners import ancestors, listener, with_environment
from tests.support.cli import run_relay_cli
from worker.dev.local_redis import LocalRedis

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = re.compile(r"(?:http|redis)://(?:\*\*\*@)?127\.0\.0\.1:(\d+)|redis-cli -p (\d+)")
STOPPED = re.compile(r"relay dev: stopped; logs in (\S+) ")


def _clean_env() -> dict[str, str]:
    """The environment of a user's shell: no relay settings, the project's venv not active."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "RELAY_"))}
    env.pop("VIRTUAL_ENV", None)
    venv = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv)
    return env


def _run_dev(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`relay dev` once through its samples, as a user runs it."""
    return run_relay_cli("dev", "--duration", "0", env=env, timeout=150, cwd=ROOT)


class DevRun:
    """`relay dev` running until told to stop, its output read as it comes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.ops.cli.main", "dev"],
            env=_clean_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))

    def close(self) -> None:
        """Kill it if it still runs (a failed test), and read its output to the end."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self.reader.join(timeout=10)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return "\n".join(self.lines)
            if self.process.poll() is not None:
                time.sleep(0.5)  # the last lines
                break
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines))

    def stop(self, signum: int) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.process.wait(timeout=90)
        self.reader.join(timeout=10)
        return self.wait_for("relay dev: stopped", 10)

    def shell_lines(self) -> list[str]:
        """The lines the banner offers to copy into another shell."""
        text = "\n".join(self.lines)
        block = text.split("try it from another shell (copy and paste):\n")[1]
        return [line.strip() for line in block.splitlines() if line.startswith("  ")]


def _only_logs(folder: Path) -> bool:
    """True when `folder` holds logs (and the run's marker) only."""
    kept = {p.name for p in folder.rglob("*") if p.is_file()}
    return "worker.log" in kept and all(n.endswith(".log") or n == "relay-dev.pid" for n in kept)


def _squat(port: int) -> socket.socket | None:
    """Listen on `port`, as another program would (None when one already does)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    sock.listen(1)
    return sock


def _in_shell(lines: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-ec", "\n".join(lines)],
        env=_clean_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(200)
def test_relay_dev_delivers_samples_and_stops_leaving_only_its_logs() -> None:
    # given no REDIS_URL: relay dev must bring its own Redis
    # when it runs once through its samples
    result = _run_dev(_clean_env())

    # then it settled, both APIs accepted requests, and the failures were reported
    assert result.returncode == 0, result.stdout + result.stderr
    assert "settled in" in result.stdout
    accepted = result.stdout.split("requests accepted by the look-alike APIs:")[1].splitlines()[0]
    assert "medallia" in accepted and "salesforce" in accepted
    assert "dead:rejected 1" in result.stdout and "dead:unroutable 1" in result.stdout
    # and every provider's signed callback was taken by the ingress and delivered
    for kind in ("twilio", "whatsapp", "vonage", "infobip", "smpp_dlr"):
        assert f"{kind} callback -> 200" in result.stdout
    assert "whatsapp-dev            accepted 2" in result.stdout
    # and the event to a target that does not exist is one row, not two
    rows = [line.split()[0] for line in result.stdout.splitlines() if line[:1] in "(mns"]
    assert "nowhere" not in rows and rows.count("(unknown)") == 1
    assert "events for targets not configured: nowhere" in result.stdout
    # and it stopped saying where its logs are, the only thing it left
    [kept] = STOPPED.findall(result.stdout)
    assert _only_logs(Path(kept))


@pytest.mark.timeout(200)
def test_relay_dev_never_prints_the_redis_password() -> None:
    # given a Redis that wants a password, named in REDIS_URL
    server = LocalRedis(password="s3cret-pw").start()
    env = _clean_env()
    env["REDIS_URL"] = server.url
    try:
        # when relay dev runs against it
        result = _run_dev(env)
    finally:
        server.stop()

    # then it worked, and its output shows the URL without the password
    assert result.returncode == 0, result.stdout + result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "redis://***@127.0.0.1" in result.stdout
    # and it kept to keys of its own on that Redis, and says so
    assert "relay-dev:inbox" in result.stdout and 'redis-cli -u "$REDIS_URL"' in result.stdout


def _own_addresses(run: DevRun, banner: str) -> None:
    """Every address `banner` gives is served by `run` or one of its children."""
    ports = {int(a or b) for a, b in ADDRESS.findall(banner)}
    assert len(ports) >= 5, banner  # Redis, sandbox, Flower, ingress, metrics
    for port in ports:
        owner = listener(port)
        assert owner is not None and run.process.pid in ancestors(owner), (port, banner)
    assert "not serving" not in banner


def _flower_tells_the_samples(banner: str) -> None:
    """The banner's Flower has the first bundle (the showcase dead letters among them), each
    sample in a task of its own outcome, next to it."""
    flower = re.search(r"Flower\s+(http://\S+)", banner)
    assert flower, banner
    url = f"{flower.group(1)}/api/tasks"

    def found(event_id: str) -> list[dict[str, Any]]:
        with requests.get(url, params={"search": event_id}, timeout=5) as answer:
            return list(answer.json().values())

    deadline = time.monotonic() + 30
    while not (rejected := found("dev-reject")) or not found("dev-sf-delivered"):
        assert time.monotonic() < deadline, "the first bundle's events are not in Flower"
        time.sleep(0.5)
    assert [t["state"] for t in rejected] == ["FAILURE"]
    assert "dev-reject: dead letter " in rejected[0]["result"]
    assert {t["state"] for t in found("dev-sf-delivered")} == {"SUCCESS"}


def _lines_work(run: DevRun) -> None:
    """The banner's lines run as printed, from a shell where the venv is not active, and the
    first event they push is delivered."""
    lines = run.shell_lines()
    export, push, trace = lines[0], lines[1], lines[2]
    assert push.startswith(("redis-cli", "echo"))
    assert _in_shell(lines).returncode == 0
    deadline = time.monotonic() + 30
    while "delivered at" not in (shown := _in_shell([export, trace])).stdout:
        assert time.monotonic() < deadline, shown.stdout + shown.stderr
        time.sleep(1)


@pytest.mark.timeout(400)
def test_two_relay_devs_side_by_side_print_only_their_own_addresses() -> None:
    with ExitStack() as stack:
        # given the ports people expect taken by another program
        for port in (5555, 8080, 9808):
            squatter = _squat(port)
            if squatter is not None:
                stack.callback(squatter.close)

        # when two relay devs run at once
        runs = [DevRun(), DevRun()]
        for run in runs:
            stack.callback(run.close)
        banners = [run.wait_for("events go onto the Redis list", 240) for run in runs]

        # then every address each printed is its own, and its lines work as printed
        for run, banner in zip(runs, banners, strict=True):
            _own_addresses(run, banner)
            _flower_tells_the_samples(banner)
        _lines_work(runs[0])

        # and Ctrl-C or SIGTERM stops each, leaving no process and only its logs
        outputs = [runs[0].stop(signal.SIGINT), runs[1].stop(signal.SIGTERM)]
    for run, output in zip(runs, outputs, strict=True):
        assert run.process.returncode == 0, output
        [kept] = STOPPED.findall(output)
        assert not with_environment(f"{kept}/relay.toml")
        assert _only_logs(Path(kept))
