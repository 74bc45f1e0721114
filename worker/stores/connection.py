"""The Redis client the relay's own state uses, and the names of its keys."""

from __future__ import annotations

import threading

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.settings import get_settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def get_redis(url: str | None = None) -> redis.Redis:
    """A shared, thread-safe client for `url` (default: REDIS_URL); strings come back decoded."""
    url = url or get_settings().redis_url
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=10,
                socket_connect_timeout=5,
                health_check_interval=30,
                # Ride out a Redis restart or failover (a few seconds) inside the task.
                retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 8),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
            _clients[url] = client
        return client


def key(*parts: str) -> str:
    """A Redis key under the relay's prefix, e.g. key("dlq") -> "relay:dlq"."""
    return ":".join((get_settings().key_prefix, *parts))


def scan_match(*parts: str) -> str:
    """A SCAN MATCH pattern for every key that starts with key(*parts), taken literally even
    when the prefix or a part holds a glob character (* ? [ ] or \\)."""
    literal = key(*parts)
    return "".join("\\" + c if c in "*?[]\\" else c for c in literal) + "*"


def text_of(value: object) -> str:
    """A Redis reply as text (the client decodes, but its type hints allow bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
