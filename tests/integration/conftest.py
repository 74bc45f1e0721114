"""Per-test relay: isolated keys and queue on the session's Redis, workers stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Relay
from worker.sandbox import Sandbox
from worker.settings import get_settings


@pytest.fixture
def relay(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    instance = Relay(tmp_path, redis_url, sandbox.url, monkeypatch)
    try:
        yield instance
    finally:
        instance.stop_all()
        get_settings.cache_clear()
