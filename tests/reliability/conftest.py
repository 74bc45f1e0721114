"""Reliability tests run real workers against the sandbox, like the integration tests; the
in-flight tests use a target that says when each answer left (`gate.GateTarget`), relays of
their own on it (`gate_relay`) and, where they pause Redis, a Redis of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.gate import GateTarget
from tests.support.harness import CONFIG, Relay
from worker.dev.local_redis import LocalRedis
from worker.settings import get_settings


@pytest.fixture
def gate() -> Iterator[GateTarget]:
    target = GateTarget().start()
    yield target
    target.stop()


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A Redis of this test's own: CLIENT PAUSE on it stops no other test."""
    server = LocalRedis().start()
    yield server
    server.stop()


@pytest.fixture
def gate_relay(
    tmp_path: Path, gate: GateTarget, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Relay]]:
    """Makes a relay whose targets are the gate (on the session's Redis unless given another,
    with `env` added to its workers' environment); its workers are stopped after the test."""
    made: list[Relay] = []

    def make(url: str | None = None, config: str = CONFIG, **env: str) -> Relay:
        relay = Relay(tmp_path, url or redis_url, gate.url, monkeypatch, config)
        relay.env.update(env)
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.stop_all()
    get_settings.cache_clear()
