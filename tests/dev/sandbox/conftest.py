"""The sandbox server that the tests in this folder share, cleared before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.dev.sandbox import Sandbox


@pytest.fixture(scope="package")
def server() -> Iterator[Sandbox]:
    sandbox = Sandbox(hub_secret="hub-secret")
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(server: Sandbox) -> Iterator[Sandbox]:
    server.clear_faults()
    server.clear_requests()
    yield server
    server.clear_faults()
