"""Fixtures of the store tests: each test gets a key prefix of its own on the session's Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.harness import own_key_prefix
from worker.stores.deadletters import DeadLetterStore
from worker.stores.retries import RetrySchedule


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with own_key_prefix(redis_url, monkeypatch, "t-stores") as name:
        yield name


@pytest.fixture
def store(prefix: str, redis_client: redis.Redis) -> DeadLetterStore:
    return DeadLetterStore(redis_client)


@pytest.fixture
def schedule(prefix: str, redis_client: redis.Redis) -> RetrySchedule:
    return RetrySchedule(redis_client)
