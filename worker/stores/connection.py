"""The Redis client the relay's own state uses, its patience, and the names of its keys."""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.retry import Retry
from redis.sentinel import Sentinel

from worker.settings import get_settings

T = TypeVar("T")
_lock = threading.Lock()
_clients: dict[tuple[str, bool], redis.Redis] = {}
_inside_retry = threading.local()
_cell_url: ContextVar[str | None] = ContextVar("relay_cell_url", default=None)


@dataclass(frozen=True, slots=True)
class Patience:
    """How long a client keeps trying before it gives up and raises."""

    retries: int
    connect_timeout: float
    """Seconds one TCP connect may take (a host that drops packets takes all of them)."""
    read_timeout: float = 10.0
    """Seconds an answer may take (each command the relay sends is short)."""
    retry_timeouts: bool = True
    """Whether a timeout is tried again, or reported at once (a hung server stays hung)."""


WORKER_PATIENCE = Patience(retries=8, connect_timeout=5.0)
"""A worker rides out a Redis restart or failover (a few seconds) inside the task: 8 retries
with backoff 0.2 s doubling to 2 s wait about 11 s, then the caller logs and tries again."""
CLI_PATIENCE = Patience(retries=2, connect_timeout=2.0, read_timeout=5.0, retry_timeouts=False)
"""An operator's command says what is wrong within seconds: a refused connection in about
0.6 s, a host that drops packets in 2 s, a server that never answers in 5 s."""
_patience = WORKER_PATIENCE


def use_patience(patience: Patience) -> None:
    """Make the clients built from now on this patient (the CLI calls it before any is built)."""
    global _patience
    _patience = patience


class FlatRetry(Retry):
    """redis-py's Retry with two changes: an authentication failure is never retried (redis-py
    counts it as a ConnectionError, so a wrong password was tried again and again, then
    reported as Redis being unreachable), and a retry inside a retry runs once (redis-py
    retries the connect inside a command that it also retries: 9 tries of 9 tries, which made
    a missing password cost 110 s and a dropped host 7 minutes). The outer call keeps the
    whole policy."""

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        if getattr(_inside_retry, "active", False):
            return do()

        def retryable(error: Exception) -> bool:
            if isinstance(error, redis.AuthenticationError):
                return False
            return is_retryable is None or is_retryable(error)

        _inside_retry.active = True
        try:
            return super().call_with_retry(do, fail, retryable, with_failure_count)
        finally:
            _inside_retry.active = False


def get_redis(url: str | None = None, *, raw: bool = False) -> redis.Redis:
    """A shared, thread-safe client for `url` (default: REDIS_URL). Strings come back decoded
    as UTF-8, or, with `raw`, as the bytes they are (for what producers wrote: it may not be
    UTF-8, and one undecodable item must not stop whoever reads it). A sentinel:// URL gives a
    client of whichever server the sentinels name master."""
    url = url or current_url()
    with _lock:
        client = _clients.get((url, raw))
        if client is None:
            client = build_client(url, raw=raw)
            _clients[(url, raw)] = client
        return client


def current_url() -> str:
    """The Redis `get_redis()` gives now: the cell being read, or REDIS_URL."""
    return _cell_url.get() or get_settings().redis_url


@contextlib.contextmanager
def using(url: str) -> Iterator[None]:
    """Within the block, `get_redis()` without a URL is a client of `url` (one cell's Redis:
    the operator's commands read each cell in turn with the stores as they are)."""
    token = _cell_url.set(url)
    try:
        yield
    finally:
        _cell_url.reset(token)


def build_client(url: str, *, raw: bool = False, patience: Patience | None = None) -> redis.Redis:
    """A new client of `url` with the process's patience (or `patience`), not shared."""
    patience = patience or _patience
    errors: tuple[type[Exception], ...] = (redis.ConnectionError,)
    if patience.retry_timeouts:
        errors += (redis.TimeoutError, socket.timeout)
    options: dict[str, Any] = {
        "decode_responses": not raw,
        "socket_timeout": patience.read_timeout,
        "socket_connect_timeout": patience.connect_timeout,
        "health_check_interval": 30,
        "retry": FlatRetry(ExponentialBackoff(cap=2.0, base=0.1), patience.retries, errors),
        "retry_on_error": list(errors),
        # Sized to the threads that use it: the task threads, the lanes (twice: a lane's rate
        # limit and its bundle's writes), and the worker's own threads with room to spare.
        # The HTTP threads never touch Redis (their answers go to the answer book), so 256 of
        # them cannot exhaust it.
        "max_connections": _pool_size(),
    }
    if is_sentinel(url):
        return _master_through_sentinels(url, options)
    return redis.Redis.from_url(url, **options)


def _pool_size() -> int:
    settings = get_settings()
    return settings.concurrency + 2 * settings.lanes + 32


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
            # The client's own policy: redis-py's default retried a refused password too.
            "retry": copy.deepcopy(options["retry"]),
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


def run_script(
    script: Script, keys: Sequence[Any], args: Sequence[Any], pipe: redis.Redis | None = None
) -> Any:
    """Run `script` now (EVALSHA, loaded again if Redis lost it), or queue it on `pipe` by its
    text (EVAL). redis-py's scripts on a pipeline ask SCRIPT EXISTS before every execution:
    a round trip more per bundle. Redis finds a known text in its script cache by its hash,
    and EVAL never fails with NOSCRIPT (a restarted or failed-over Redis), which in a
    pipeline would fail one write among others that went through."""
    if pipe is None:
        return script(keys=keys, args=args)
    return pipe.eval(text_of(script.script), len(keys), *keys, *args)


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
