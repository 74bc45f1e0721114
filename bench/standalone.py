"""What the one-thing tools (`bench.profile`, `bench.latency_stages`) start: a throwaway Redis,
the target and one relay worker per core, stopped by their pids however the tool ends."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import stop_all


@dataclass(frozen=True)
class Setup:
    redis_url: str
    target: Any
    fleet: Any


@contextmanager
def relay_fleet(label: str, fine_clock: bool = False) -> Iterator[Setup]:
    """Redis, the target (the asyncio one with `fine_clock`), workers; all stopped at the end."""
    os.environ.setdefault("BENCH_SF_TOKEN", "bench-sf-token")
    os.environ.setdefault("BENCH_MD_TOKEN", "bench-md-token")
    from worker.dev.local_redis import LocalRedis

    server = LocalRedis().start()
    os.environ["REDIS_URL"] = server.url
    import redis

    from bench.relay_runs import Fleet, write_config
    from bench.targets import start_target

    target = start_target(os.cpu_count() or 1, fine_clock=fine_clock)
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"relay-{label}-"))
        config = write_config(workdir, target.url("fast"), label[0])
        fleet = Fleet(redis.Redis.from_url(server.url), config, os.cpu_count() or 1, workdir)
        try:
            yield Setup(server.url, target, fleet)
        finally:
            fleet.stop()
    finally:
        target.stop()
        stop_all()
        server.stop()
