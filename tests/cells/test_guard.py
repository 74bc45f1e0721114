"""A worker refuses a list of cells its cell's Redis has not served in that order (a reorder or
a replaced cell would send every message elsewhere); growing, a rollout either way and removing
the last cell are fine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.harness import CONFIG
from worker.cells.cells import Cells
from worker.cells.guard import list_problem

A, B, C, D = (f"redis://h{n}:6379/0" for n in "abcd")


@pytest.mark.parametrize(
    ("served", "now", "refused"),
    [
        ([], [A, B], False),  # the first list a cell sees is recorded
        ([[A, B]], [A, B], False),
        ([[A, B]], [A, B, C], False),  # a cell added at the end
        ([[A, B, C]], [A, B], False),  # an older worker mid-rollout, or the last cell removed
        ([[A, B]], ["redis://user:pw@ha:6379/0", B], False),  # another Redis user, same cell
        ([[A, B]], [B, A], True),  # reordered
        ([[A, B]], [A, C], True),  # a cell replaced
        ([[A, B], [A, B, C]], [A, B, D], True),  # the record grew with the list
        ([[A, B]], [A], False),  # one cell: nothing to agree on
    ],
)
def test_the_list_must_extend_or_begin_what_the_cell_served(
    prefix: str, redis_client: redis.Redis, served: list[list[str]], now: list[str], refused: bool
) -> None:
    for urls in served:
        assert list_problem(redis_client, Cells(tuple(urls))) is None
    problem = list_problem(redis_client, Cells(tuple(now)))
    assert (problem is not None) == refused
    if problem:
        assert "only ever added at the end" in problem and "pw" not in problem


def test_a_worker_with_a_reordered_list_refuses_to_start(
    prefix: str, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    other = "redis://127.0.0.1:1/0"
    assert list_problem(redis_client, Cells((redis_url, other))) is None
    (tmp_path / "relay.toml").write_text(CONFIG.format(sandbox="http://127.0.0.1:1"))
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RELAY_CELLS": f"{other},{redis_url}",
        "RELAY_CONFIG": str(tmp_path / "relay.toml"),
        "RELAY_KEY_PREFIX": prefix,
        "RELAY_METRICS_PORT": "0",
        "SF_TOKEN": "x",
        "MD_TOKEN": "x",
    }
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "-P", "threads"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "only ever added at the end" in done.stderr
