"""Hostile producers push raw bytes straight onto the inbox, as any language's client can."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.support.harness import Relay


@pytest.fixture
def rpush(relay: Relay, redis_url: str) -> Iterator[Callable[..., None]]:
    """RPUSH raw items (bytes or text) onto this relay's inbox, bypassing every check."""
    client = redis.Redis.from_url(redis_url)
    inbox = f"{relay.env['RELAY_KEY_PREFIX']}:inbox"

    def push(*items: bytes | str) -> None:
        client.rpush(inbox, *items)

    yield push
    client.close()
