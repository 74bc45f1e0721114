"""A cell that cannot be reached is said, and the others are still shown."""

from __future__ import annotations

import os

from tests.support.cli import run_relay_cli
from worker.dev.local_redis import free_port


def test_status_shows_the_cells_it_reaches_and_names_the_one_it_cannot(
    prefix: str, redis_url: str
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**os.environ, "RELAY_CELLS": f"{redis_url},{down}", "RELAY_KEY_PREFIX": prefix}
    env.pop("REDIS_URL", None)
    done = run_relay_cli("status", env=env)
    assert done.returncode == 1
    assert "== cell 0 (" in done.stdout and "inbox" in done.stdout.lower()
    assert f"cell 1 ({down})" in done.stderr and "cannot reach Redis" in done.stderr
