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


def get_redis(url: str | None = None, *, raw: bool = False) -> redis.Redis:
    """A shared, thread-safe client for `url` (default: REDIS_URL). Strings come back decoded
    as UTF-8, or, with `raw`, as the bytes they are (for what producers wrote: it may not be
    UTF-8, and one undecodable item must not stop whoever reads it). A sentinel:// URL gives a
    client of whichever server the sentinels name master."""
    settings = get_settings()
    url = url or settings.redis_url
    with _lock:
        client = _clients.get((url, raw))
        if client is None:
            options: dict[str, Any] = {
                "decode_responses": not raw,
                "socket_timeout": 10,
                "socket_connect_timeout": 5,
                "health_check_interval": 30,
                # Ride out a Redis restart or failover (a few seconds) inside the task.
                "retry": Retry(ExponentialBackoff(cap=2.0, base=0.1), 8),
                "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
                # Sized to the threads that use it: the task threads, the lanes (twice: a
                # lane's rate limit and its bundle's writes), and the worker's own threads
                # with room to spare. The HTTP threads never touch Redis (their answers go
                # to the answer book), so 256 of them cannot exhaust it.
                "max_connections": settings.concurrency + 2 * settings.lanes + 32,
            }
            if is_sentinel(url):
                client = _master_through_sentinels(url, options)
            else:
                client = redis.Redis.from_url(url, **options)
            _clients[(url, raw)] = client
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


def bytes_of(value: object) -> bytes:
    """A raw client's reply as bytes (its type hints allow str)."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
