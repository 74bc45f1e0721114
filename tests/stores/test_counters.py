"""Outcome counters on a real Redis, each relay under its own key prefix."""

from __future__ import annotations

import pytest
import redis

from worker.settings import get_settings
from worker.stores.counters import Counters

pytestmark = pytest.mark.timeout(30)


def test_counters_incr_and_snapshot(prefix: str, redis_client: redis.Redis) -> None:
    counters = Counters(redis_client)
    assert counters.snapshot() == {}
    counters.incr("sf", "delivered")
    counters.incr("sf", "delivered", 2)
    counters.incr("sf", "retried")
    counters.incr("md", "dead")
    counters.incr(None, "dead", 4)
    assert counters.snapshot() == {
        "sf": {"delivered": 3, "retried": 1},
        "md": {"dead": 1},
        "-": {"dead": 4},
    }


def test_counters_see_only_their_own_prefix(
    prefix: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    Counters(redis_client).incr("sf", "delivered")
    other = f"{prefix}-other"
    monkeypatch.setenv("RELAY_KEY_PREFIX", other)
    get_settings.cache_clear()
    try:
        assert Counters(redis_client).snapshot() == {}
        Counters(redis_client).incr("sf", "dead")
        assert Counters(redis_client).snapshot() == {"sf": {"dead": 1}}
    finally:
        redis_client.delete(f"{other}:stats:sf")
        monkeypatch.setenv("RELAY_KEY_PREFIX", prefix)
        get_settings.cache_clear()
    assert Counters(redis_client).snapshot() == {"sf": {"delivered": 1}}
