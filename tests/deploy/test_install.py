"""The package as an operator installs it: the wheel, no extras, a fresh venv outside the checkout.

Once, a clean `pip install` died at the worker's first import (kombu's Redis transport needs
`packaging`, which only the test tools had brought). This builds the wheel, installs it alone
into a new virtualenv in a temporary folder, and runs the installed `celery` and `relay` from a
temporary working directory, so nothing of the checkout can be imported by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.processes import stop_group
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    """Run a command to completion; fail the test with its output if it fails."""
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_env(base: dict[str, str]) -> dict[str, str]:
    """The environment without anything that points Python at the checkout or the dev venv."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    return {k: v for k, v in base.items() if k not in drop}


def install_wheel(tmp: Path) -> Path:
    """Build the wheel from the checkout and install it, no extras, into tmp/venv."""
    env = clean_env(dict(os.environ))
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp / "dist"), str(ROOT)],
        tmp,
        env,
    )
    [wheel] = (tmp / "dist").glob("delivery_relay-*.whl")
    run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp, env)
    run([str(tmp / "venv/bin/python"), "-m", "pip", "install", str(wheel)], tmp, env)
    return tmp / "venv/bin"


def start_installed_worker(bin_dir: Path, relay: Relay, cwd: Path) -> subprocess.Popen[bytes]:
    """`celery -A worker worker` from the installed package, registered with `relay` to stop."""
    log_path = relay.tmp / "installed-worker.log"
    argv = [
        str(bin_dir / "celery"),
        "-A",
        "worker",
        "worker",
        "-n",
        f"inst-{uuid.uuid4().hex[:6]}@%h",
        "-Q",
        relay.env["RELAY_QUEUE"],
        "-c",
        "2",
        "--without-mingle",
        "--without-gossip",
        "-l",
        "INFO",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=clean_env(relay.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    relay.workers.append(process)
    wait_for(
        lambda: b" ready." in log_path.read_bytes() or process.poll() is not None,
        60,
        "the installed worker to start",
    )
    assert process.poll() is None, log_path.read_text()
    return process


def test_the_wheel_alone_installs_a_worker_and_cli_that_deliver(
    relay: Relay,
    sandbox: Sandbox,
    tmp_path_factory: pytest.TempPathFactory,
    figures: Callable[..., None],
) -> None:
    # given the wheel installed without extras into a fresh venv, run from an empty folder
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("install")
    bin_dir = install_wheel(tmp)
    install_seconds = time.monotonic() - started
    cwd = tmp_path_factory.mktemp("cwd")
    env = clean_env(relay.env)
    where = run([str(bin_dir / "python"), "-c", "import worker; print(worker.__file__)"], cwd, env)
    assert str(tmp / "venv") in where, where

    # when its worker runs and its CLI checks the config and pushes one event
    worker = start_installed_worker(bin_dir, relay, cwd)
    checked = run([str(bin_dir / "relay"), "check-config"], cwd, env)
    one = event("md", "delivered")
    pushed = subprocess.run(
        [str(bin_dir / "relay"), "push", "-"],
        cwd=cwd,
        env=env,
        input=json.dumps(one) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then the event reaches the target, and the CLI answered as documented
    assert "OK, 2 target(s)" in checked
    assert pushed.returncode == 0 and "queued 1 event(s)" in pushed.stdout, pushed.stderr
    relay.wait_settled(1, timeout=60)
    assert posted_ids(sandbox.requests()) == one["message_ids"]
    stop_group(worker)
    figures(install_seconds=round(install_seconds, 1))
