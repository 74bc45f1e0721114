"""The Redis client the relay's own state uses, and the names of its keys."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from worker.settings import get_settings

_lock = threading.Lock()
_clients: dict[tuple[str, bool], redis.Redis] = {}


def get_redis(url: str | None = None, *, retry: bool = True) -> redis.Redis:
    """A shared, thread-safe client for `url` (default: REDIS_URL); strings come back decoded.

    With `retry` (the default) a command that meets a dropped connection is sent again, for a
    few seconds, which rides out a Redis restart or failover. That is only safe for commands
    whose repeat does no harm: a move that ran but whose answer was lost would move other items
    the second time. `retry=False` gives a client that raises instead, for callers that recover
    from the state in Redis themselves (the inbox bundler).
    """
    url = url or get_settings().redis_url
    with _lock:
        client = _clients.get((url, retry))
        if client is None:
            options: dict[str, Any] = {
                "decode_responses": True,
                "socket_timeout": 10,
                "socket_connect_timeout": 5,
                "health_check_interval": 30,
                "retry": Retry(ExponentialBackoff(cap=2.0, base=0.1), 8 if retry else 0),
                "retry_on_error": [redis.ConnectionError, redis.TimeoutError] if retry else [],
            }
            if is_sentinel(url):
                client = _master_through_sentinels(url, options)
            else:
                client = redis.Redis.from_url(url, **options)
            _clients[(url, retry)] = client
        return client


def is_sentinel(url: str) -> bool:
    """True for kombu's Sentinel form of REDIS_URL (sentinel://host:port;sentinel://...)."""
    return url.startswith("sentinel://")


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    """What a sentinel:// URL says: the sentinels, and the master's database and credentials."""

    sentinels: list[tuple[str, int]]
    db: int
    username: str | None
    password: str | None


def parse_sentinel_url(url: str) -> SentinelAddress:
    """Read kombu's form: addresses joined by ';', the first one's credentials and database
    being the master's (as kombu's Sentinel transport reads them)."""
    parts = [urlsplit(part.strip()) for part in url.split(";") if part.strip()]
    first = parts[0]
    return SentinelAddress(
        sentinels=[(p.hostname or "127.0.0.1", p.port or 26379) for p in parts],
        db=int(first.path.strip("/") or 0),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
    )


def _master_through_sentinels(url: str, options: dict[str, Any]) -> redis.Redis:
    """A client of whichever server the sentinels name master now; after a failover its
    connections find the new one (a demoted master's READONLY answer reconnects too)."""
    settings, address = get_settings(), parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        address.sentinels,
        sentinel_kwargs={
            "password": settings.sentinel_password,
            "socket_timeout": 2,
            "socket_connect_timeout": 2,
        },
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.sentinel_master,
        db=address.db,
        username=address.username,
        password=address.password,
        **options,
    )
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
