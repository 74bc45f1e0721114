"""Fixtures of the cell tests: a key prefix of the test's own on the session's Redis, and a fleet
of three cells on this machine (a redis-server each, a worker each, one ingress over them all)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.cells import CellRelay, redis_servers
from tests.support.harness import own_key_prefix
from tests.support.ingress import INGRESS_CONFIG, SECRETS, Ingress
from worker.dev.sandbox import Sandbox
from worker.settings import get_settings


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with own_key_prefix(redis_url, monkeypatch, "t-cells") as name:
        yield name


@dataclass
class Fleet:
    relay: CellRelay
    ingress: Ingress
    sandbox: Sandbox


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, sandbox_server: Sandbox) -> Iterator[Fleet]:
    patch = pytest.MonkeyPatch()
    for name, value in SECRETS.items():
        patch.setenv(name, value)
    tmp = tmp_path_factory.mktemp("cells")
    with redis_servers(3) as urls:
        relay = CellRelay(tmp, urls, sandbox_server.url, patch, INGRESS_CONFIG)
        relay.env.update(SECRETS)
        try:
            for cell in range(3):
                relay.start_cell_worker(cell)
            yield Fleet(relay, Ingress(relay), sandbox_server)
        finally:
            relay.stop_all()
            patch.undo()
            get_settings.cache_clear()
