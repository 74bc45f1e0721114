"""`relay dev` (what `make run` runs) works on its own embedded Redis."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from worker.dev.local_redis import LocalRedis


def _run_dev(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`relay dev` once through its samples, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "worker.ops.cli.main", "dev", "--duration", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


@pytest.mark.timeout(120)
def test_relay_dev_delivers_samples_to_both_look_alike_apis() -> None:
    # given no REDIS_URL: relay dev must bring its own Redis
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "RELAY_"))}

    # when it runs once through its samples
    result = _run_dev(env)

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


@pytest.mark.timeout(120)
def test_relay_dev_never_prints_the_redis_password() -> None:
    # given a Redis that wants a password, named in REDIS_URL
    server = LocalRedis(password="s3cret-pw").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "RELAY_"))}
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
