"""The Redis client the relay's own state uses, and the names of its keys."""

from __future__ import annotations

import threading

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.settings import get_settings

_lock = threading.Lock()
_clients: dict[tuple[str, bool], redis.Redis] = {}


def get_redis(url: str | None = None, *, raw: bool = False) -> redis.Redis:
    """A shared, thread-safe client for `url` (default: REDIS_URL). Strings come back decoded
    as UTF-8, or, with `raw`, as the bytes they are (for what producers wrote: it may not be
    UTF-8, and one undecodable item must not stop whoever reads it)."""
    url = url or get_settings().redis_url
    with _lock:
        client = _clients.get((url, raw))
        if client is None:
            client = redis.Redis.from_url(
                url,
                decode_responses=not raw,
                socket_timeout=10,
                socket_connect_timeout=5,
                health_check_interval=30,
                # Ride out a Redis restart or failover (a few seconds) inside the task.
                retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 8),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
            _clients[(url, raw)] = client
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


def bytes_of(value: object) -> bytes:
    """A raw client's reply as bytes (its type hints allow str)."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
