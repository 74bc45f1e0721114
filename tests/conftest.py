"""Session-wide real services: a throwaway Redis and the sandbox look-alike APIs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from worker.redis_server import LocalRedis
from worker.sandbox import Sandbox


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
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()
