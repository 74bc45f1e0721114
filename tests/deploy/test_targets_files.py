"""Every targets file deploy/ ships loads as the relay would load it (the secrets it names set):
a file that the worker would refuse at start is a deployment that never starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.uses import DEPLOY, secret_names_in_targets
from worker.config import load_config

pytestmark = pytest.mark.timeout(30)
FILES = sorted(DEPLOY.rglob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_a_shipped_targets_file_loads(path: Path) -> None:
    environ = {name: f"value-of-{name}" for name in secret_names_in_targets(path)}

    config = load_config(str(path), environ)

    assert config.targets
    assert len(FILES) >= 3
