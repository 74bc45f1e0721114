"""Session-wide real services: a throwaway Redis and the sandbox look-alike APIs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings

from tests.support.harness import Relay
from tests.support.sentry_standin import SentryStandIn
from worker.dev.local_redis import LocalRedis
from worker.dev.sandbox import Sandbox
from worker.settings import get_settings

# Property-based tests: a few hundred examples each keeps `make test` within its minutes; no
# per-example deadline (the machine is shared and noisy), no example database in the tree.
settings.register_profile(
    "relay",
    max_examples=int(os.environ.get("RELAY_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("relay")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """RELAY_TEST_REDIS_URL if given, else a redis-server of our own on a free port."""
    given = os.environ.get("RELAY_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = LocalRedis().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    server = Sandbox(tokens={"salesforce": "sf-test-token", "medallia": "md-test-token"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The sandbox with no faults and no recorded requests."""
    sandbox_server.clear_faults()
    sandbox_server.clear_requests()
    yield sandbox_server
    sandbox_server.clear_faults()


@pytest.fixture
def relay(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    """A relay with its own keys and queue on the session's Redis; workers stopped after."""
    instance = Relay(tmp_path, redis_url, sandbox.url, monkeypatch)
    try:
        yield instance
    finally:
        instance.stop_all()
        get_settings.cache_clear()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def raw_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client that reads values as bytes, as the feeder does."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def sentry(relay: Relay) -> Iterator[SentryStandIn]:
    """A local Sentry ingest stand-in that the relay's workers report to."""
    standin = SentryStandIn().start()
    relay.env["SENTRY_DSN"] = standin.dsn
    yield standin
    standin.stop()


_FIGURES: list[str] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a test's measured figures; they are printed at the end of the run."""

    def record(**values: object) -> None:
        line = ", ".join(f"{k}={v}" for k, v in values.items())
        _FIGURES.append(f"{request.node.name}: {line}")
        print(line)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("measured figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
