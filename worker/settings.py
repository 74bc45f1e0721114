"""Process-wide settings read once from the environment (12-factor), each default documented."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SystemExit(f"{name}={raw!r} must not be negative")
    return value


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().upper()
    if value not in allowed:
        raise SystemExit(f"{name}={value!r} must be one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the relay reads from its environment."""

    redis_url: str
    """REDIS_URL: broker and state store. Default: redis://127.0.0.1:6379/0. For Redis Sentinel,
    kombu's form: sentinel://[:PASSWORD@]HOST:26379[/DB];sentinel://HOST2:26379;... (the
    password and database of the first address are the master's)."""
    sentinel_master: str
    """RELAY_SENTINEL_MASTER: the master's name the sentinels watch, when REDIS_URL is a
    sentinel:// URL. Default: mymaster."""
    sentinel_password: str | None
    """RELAY_SENTINEL_PASSWORD: password of the sentinels themselves (their `requirepass`), when
    they have one; the master's password goes in REDIS_URL. Default: unset."""
    config_path: str
    """RELAY_CONFIG: path of the targets file (TOML). Default: relay.toml."""
    sentry_dsn: str | None
    """SENTRY_DSN: report final failures to Sentry when set."""
    key_prefix: str
    """RELAY_KEY_PREFIX: prefix of every Redis key the relay owns. Default: relay."""
    queue: str
    """RELAY_QUEUE: the Celery queue deliveries travel on. Default: relay."""
    concurrency: int
    """RELAY_CONCURRENCY: threads per worker process; deliveries wait on HTTP. Default: 16."""
    prefetch: int
    """RELAY_PREFETCH: messages reserved per thread. Default: 1, so a reserved message never
    waits behind slow ones long enough to reach the visibility timeout and be run twice."""
    visibility_timeout: float
    """RELAY_VISIBILITY_TIMEOUT: seconds before Redis hands an unacked message (one a dead
    worker held) to another worker. Default: 60, so a crash costs about a minute, not an hour.

    It must exceed the longest task: a task stops sending after RELAY_TASK_BUDGET seconds and
    parks the rest, and retries wait in Redis, never inside a task."""
    task_budget: float
    """RELAY_TASK_BUDGET: seconds one task may spend sending before it parks what is left.
    Default: 25 (well under the visibility timeout)."""
    retry_poll_interval: float
    """RELAY_RETRY_POLL: seconds between looks at the retry schedule. Default: 0.5."""
    retry_lease: float
    """RELAY_RETRY_LEASE: seconds a claimed retry is hidden before another worker may take it
    back (covers a worker dying between claiming and re-queueing). Default: 60."""
    dedup_window: float
    """RELAY_DEDUP_WINDOW: seconds a delivered event_id is remembered. Default: 86400."""
    dlq_max_size: int
    """RELAY_DLQ_MAX_SIZE: dead letters kept at most; the oldest go first. Default: 100000."""
    dlq_max_age: float
    """RELAY_DLQ_MAX_AGE: seconds a dead letter is kept. Default: 2592000 (30 days)."""
    max_event_bytes: int
    """RELAY_MAX_EVENT_BYTES: a pushed event larger than this is refused. Default: 65536."""
    inbox_max: int
    """RELAY_INBOX_MAX: events the inbox may hold; past it pushes are refused (InboxFull).
    Default: 1,000,000 (about 300 MB of Redis at the usual 300 bytes an event)."""
    breaker_threshold: int
    """RELAY_BREAKER_THRESHOLD: consecutive retryable failures that open a target's circuit.
    Default: 20."""
    breaker_cooldown: float
    """RELAY_BREAKER_COOLDOWN: seconds an opened circuit waits before one probe. Default: 15."""
    breaker_max_cooldown: float
    """RELAY_BREAKER_MAX_COOLDOWN: cap on the cool-down, which doubles per failed probe.
    Default: 300."""
    metrics_port: int
    """RELAY_METRICS_PORT: each worker serves Prometheus /metrics here; 0 = off. Default: 9808."""
    log_format: str
    """RELAY_LOG_FORMAT: "text" or "json" for the relay's own log lines. Default: text."""
    log_level: str
    """RELAY_LOG_LEVEL: the relay's own log level. Default: INFO (a line per failed attempt;
    DEBUG adds one per delivered attempt)."""
    bundle_size: int
    """RELAY_BATCH: most events one bundle carries: a lane's take from the inbox, or a Celery
    message of retries or replays. Default: 200 (see the README's Performance section)."""
    lanes: int
    """RELAY_LANES: bundles a worker process delivers at once from the inbox, each in a lane of
    its own. Default: 4 (enough to keep a 50 ms target busy; more lanes make smaller bundles
    at moderate rates, which costs CPU per event)."""
    http_threads: int
    """RELAY_HTTP_THREADS: requests a worker process sends side by side (and connections it
    keeps open per target host). Default: 256, so that four lanes of bundles to a target that
    takes 50 ms to answer are sent at once, not in turns (see the README's Performance)."""
    task_events: bool
    """RELAY_TASK_EVENTS: send Celery task events from the start ("1"). Default: off; Flower
    turns them on by itself within seconds of seeing a worker (its enable_events), so they
    cost nothing while no Flower watches."""
    ingress_max_bytes: int = 1 << 20
    """RELAY_INGRESS_MAX_BYTES: a callback body larger than this is answered 413. Default:
    1048576 (1 MiB)."""
    ingress_token: str | None = field(default=None, repr=False)
    """RELAY_INGRESS_TOKEN: the Bearer token of POST /v1/correlations; unset: the endpoint
    refuses every request."""


def safe_url(url: str) -> str:
    """A Redis URL without its password, fit for output and logs (each address of a
    sentinel:// list on its own)."""
    if ";" in url:
        return ";".join(safe_url(part) for part in url.split(";"))
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    env = os.environ.get
    return Settings(
        redis_url=env("REDIS_URL") or DEFAULT_REDIS_URL,
        sentinel_master=env("RELAY_SENTINEL_MASTER") or "mymaster",
        sentinel_password=env("RELAY_SENTINEL_PASSWORD") or None,
        config_path=env("RELAY_CONFIG") or "relay.toml",
        sentry_dsn=env("SENTRY_DSN") or None,
        key_prefix=env("RELAY_KEY_PREFIX") or "relay",
        queue=env("RELAY_QUEUE") or "relay",
        concurrency=int(_number("RELAY_CONCURRENCY", 16)) or 1,
        prefetch=int(_number("RELAY_PREFETCH", 1)) or 1,
        visibility_timeout=_number("RELAY_VISIBILITY_TIMEOUT", 60.0) or 60.0,
        task_budget=_number("RELAY_TASK_BUDGET", 25.0) or 25.0,
        retry_poll_interval=_number("RELAY_RETRY_POLL", 0.5) or 0.5,
        retry_lease=_number("RELAY_RETRY_LEASE", 60.0),
        dedup_window=_number("RELAY_DEDUP_WINDOW", 86400.0),
        dlq_max_size=int(_number("RELAY_DLQ_MAX_SIZE", 100_000)),
        dlq_max_age=_number("RELAY_DLQ_MAX_AGE", 30 * 86400.0),
        max_event_bytes=int(_number("RELAY_MAX_EVENT_BYTES", 65536)),
        inbox_max=int(_number("RELAY_INBOX_MAX", 1_000_000)) or 1,
        breaker_threshold=int(_number("RELAY_BREAKER_THRESHOLD", 20)) or 1,
        breaker_cooldown=_number("RELAY_BREAKER_COOLDOWN", 15.0) or 15.0,
        breaker_max_cooldown=_number("RELAY_BREAKER_MAX_COOLDOWN", 300.0) or 300.0,
        metrics_port=int(_number("RELAY_METRICS_PORT", 9808)),
        log_format=(env("RELAY_LOG_FORMAT") or "text").lower(),
        log_level=_choice("RELAY_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        bundle_size=int(_number("RELAY_BATCH", 200)) or 1,
        lanes=int(_number("RELAY_LANES", 4)) or 1,
        http_threads=int(_number("RELAY_HTTP_THREADS", 256)) or 1,
        task_events=(env("RELAY_TASK_EVENTS") or "").strip().lower() in ("1", "true", "yes", "on"),
        ingress_max_bytes=int(_number("RELAY_INGRESS_MAX_BYTES", 1 << 20)),
        ingress_token=env("RELAY_INGRESS_TOKEN") or None,
    )
