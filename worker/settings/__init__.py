"""Settings read once from the environment: each a field made by `setting(...)` with its variable,
default, range and doc (the reference is generated from `SPECS`); a bad value refused at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from worker.settings.cells import CellSettings, default_redis_url
from worker.settings.checks import cross_problems
from worker.settings.edge import EdgeSettings
from worker.settings.spec import SettingsError, Spec, problem, read_value, safe_url, setting
from worker.settings.upgrade import UpgradeSettings

__all__ = ["SPECS", "SettingsError", "Spec", "get_settings", "load_settings", "safe_url"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, slots=True)
class Settings(CellSettings):
    """Everything the relay reads from its environment (see each field's `setting`)."""

    redis_url: str = setting(
        "REDIS_URL",
        DEFAULT_REDIS_URL,
        "redis_url",
        "Broker and state store. For Redis Sentinel, kombu's form: "
        "`sentinel://[:PASSWORD@]HOST:26379[/DB];sentinel://HOST2:26379;...` (the password and "
        "database of the first address are the master's). TLS: `rediss://`.",
        secret=True,
    )
    sentinel_master: str = setting(
        "RELAY_SENTINEL_MASTER",
        "mymaster",
        "text",
        "The master's name the sentinels watch, when REDIS_URL is a sentinel:// URL.",
    )
    sentinel_password: str | None = setting(
        "RELAY_SENTINEL_PASSWORD",
        None,
        "text",
        "Password of the sentinels themselves (their `requirepass`), when they have one; the "
        "master's password goes in REDIS_URL.",
        secret=True,
    )
    config_path: str = setting(
        "RELAY_CONFIG", "relay.toml", "text", "Path of the targets file (TOML)."
    )
    sentry_dsn: str | None = setting(
        "SENTRY_DSN", None, "text", "Report final failures to Sentry when set.", secret=True
    )
    key_prefix: str = setting(
        "RELAY_KEY_PREFIX", "relay", "text", "Prefix of every Redis key the relay owns."
    )
    queue: str = setting(
        "RELAY_QUEUE", "relay", "text", "The Celery queue retries and replays travel on."
    )
    concurrency: int = setting(
        "RELAY_CONCURRENCY",
        16,
        "int",
        "Threads per worker process for Celery messages (retries and replays); deliveries "
        "wait on HTTP.",
        minimum=1,
        maximum=1024,
    )
    prefetch: int = setting(
        "RELAY_PREFETCH",
        1,
        "int",
        "Messages reserved per thread: 1, so a reserved message never waits behind slow ones "
        "long enough to reach the visibility timeout and be run twice.",
        minimum=1,
        maximum=100,
    )
    visibility_timeout: float = setting(
        "RELAY_VISIBILITY_TIMEOUT",
        10.0,
        "float",
        "The lease on a worker's work: seconds after its last renewal before a dead worker's "
        "lanes and unacked messages go to another worker. Live workers renew theirs every "
        "fifth of it, however long a task runs; the others take over within 1.5 times it.",
        minimum=2,
        maximum=3600,
        unit=" s",
    )
    task_budget: float = setting(
        "RELAY_TASK_BUDGET",
        25.0,
        "float",
        "Seconds one task or lane bundle may spend sending before it parks what is left "
        "(without spending an attempt).",
        minimum=1,
        maximum=3600,
        unit=" s",
    )
    retry_poll_interval: float = setting(
        "RELAY_RETRY_POLL",
        0.5,
        "float",
        "Seconds between looks at the retry schedule.",
        minimum=0.01,
        maximum=60,
        unit=" s",
    )
    retry_lease: float = setting(
        "RELAY_RETRY_LEASE",
        60.0,
        "float",
        "Seconds a claimed retry is hidden before another worker may take it back (covers a "
        "worker dying between claiming and re-queueing).",
        minimum=1,
        maximum=3600,
        unit=" s",
    )
    dedup_window: float = setting(
        "RELAY_DEDUP_WINDOW",
        86400.0,
        "float",
        "Seconds a delivered event_id (per message id) is remembered; 0 remembers nothing.",
        minimum=0,
        maximum=90 * 86400,
        unit=" s",
    )
    dlq_max_size: int = setting(
        "RELAY_DLQ_MAX_SIZE",
        100_000,
        "int",
        "Dead letters kept at most; the oldest go first.",
        minimum=1,
        maximum=100_000_000,
    )
    dlq_max_age: float = setting(
        "RELAY_DLQ_MAX_AGE",
        30 * 86400.0,
        "float",
        "Seconds a dead letter is kept.",
        minimum=1,
        maximum=3650 * 86400,
        unit=" s",
    )
    max_event_bytes: int = setting(
        "RELAY_MAX_EVENT_BYTES",
        65536,
        "int",
        "A pushed event larger than this is refused (an `invalid` dead letter keeps 1 KiB of it).",
        minimum=1024,
        maximum=16 << 20,
        unit=" bytes",
    )
    inbox_max: int = setting(
        "RELAY_INBOX_MAX",
        1_000_000,
        "int",
        "Events the inbox may hold; past it pushes are refused (`InboxFull`, the ingress "
        "answers 503). About 300 MB of Redis at the usual 300 bytes an event.",
        minimum=1,
        maximum=1_000_000_000,
    )
    breaker_threshold: int = setting(
        "RELAY_BREAKER_THRESHOLD",
        20,
        "int",
        "Consecutive retryable failures that open a target's circuit.",
        minimum=1,
        maximum=100_000,
    )
    breaker_cooldown: float = setting(
        "RELAY_BREAKER_COOLDOWN",
        15.0,
        "float",
        "Seconds an opened circuit waits before one probe.",
        minimum=0.1,
        maximum=3600,
        unit=" s",
    )
    breaker_max_cooldown: float = setting(
        "RELAY_BREAKER_MAX_COOLDOWN",
        300.0,
        "float",
        "Cap on the cool-down, which doubles per failed probe (at least RELAY_BREAKER_COOLDOWN).",
        minimum=0.1,
        maximum=86400,
        unit=" s",
    )
    metrics_port: int = setting(
        "RELAY_METRICS_PORT",
        9808,
        "int",
        "Each worker serves Prometheus /metrics on this port; 0 turns it off.",
        minimum=0,
        maximum=65535,
    )
    log_format: str = setting(
        "RELAY_LOG_FORMAT",
        "text",
        "choice",
        "The relay's own log lines as text or as one JSON object per line.",
        choices=("text", "json"),
    )
    log_level: str = setting(
        "RELAY_LOG_LEVEL",
        "INFO",
        "choice",
        "The relay's own log level: INFO logs a line per failed attempt and per bundle that "
        "parked or dead-lettered an event; DEBUG adds one per delivered attempt and bundle.",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )
    bundle_size: int = setting(
        "RELAY_BATCH",
        200,
        "int",
        "Most events one bundle carries: a lane's take from the inbox, or a Celery message of "
        "retries or replays.",
        minimum=1,
        maximum=10_000,
    )
    lanes: int = setting(
        "RELAY_LANES",
        4,
        "int",
        "Bundles a worker process delivers at once from the inbox, each in a lane of its own "
        "(enough to keep a 50 ms target busy; more lanes make smaller bundles at moderate "
        "rates, which costs CPU per event).",
        minimum=1,
        maximum=64,
    )
    http_threads: int = setting(
        "RELAY_HTTP_THREADS",
        256,
        "int",
        "Requests a worker process sends side by side (and connections it keeps open per "
        "target host).",
        minimum=1,
        maximum=4096,
    )
    task_events: bool = setting(
        "RELAY_TASK_EVENTS",
        False,
        "bool",
        "Send Celery task events from the start. Off by default: Flower turns them on by "
        "itself within seconds of seeing a worker, so they cost nothing while no Flower watches.",
    )
    ingress_max_bytes: int = setting(
        "RELAY_INGRESS_MAX_BYTES",
        1 << 20,
        "int",
        "Cap on a JSON batch callback's body (WhatsApp, Infobip) and on POST /v1/correlations; "
        "larger: 413, judged from Content-Length before reading.",
        minimum=1024,
        maximum=64 << 20,
        unit=" bytes",
    )
    ingress_token: str | None = setting(
        "RELAY_INGRESS_TOKEN",
        None,
        "text",
        "The Bearer token of POST /v1/correlations; unset, the endpoint refuses every request.",
        secret=True,
    )


_GROUPS = (CellSettings, UpgradeSettings, EdgeSettings)  # after the others, in this order
_LAST = {f.name: n for n, group in enumerate(_GROUPS, 1) for f in fields(group)}
SPECS: tuple[Spec, ...] = tuple(
    f.metadata["spec"] for f in sorted(fields(Settings), key=lambda f: _LAST.get(f.name, 0))
)
"""Every setting, in the reference's order (the cells', the upgrade's, the ingress's edge)."""


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from `environ`; `SettingsError` listing every value that cannot be used."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(Settings):
        spec: Spec = f.metadata["spec"]
        raw = environ.get(spec.env)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[f.name] = read_value(spec, raw)
        except ValueError:
            problems.append(problem(spec, raw))
    given = default_redis_url(values)  # unset with cells: the first cell's
    settings = Settings(**values)
    problems += cross_problems(settings, given)
    if problems:
        raise SettingsError(problems)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings(os.environ)
