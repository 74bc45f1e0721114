"""One relay per test module: a real worker and a real ingress process on the session's Redis
and sandbox (starting them takes seconds; tests tell their receipts apart by message ids)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Relay, posted_ids, wait_for
from tests.support.ingress import INGRESS_CONFIG, SECRETS, Ingress
from worker.dev.sandbox import Sandbox
from worker.settings import get_settings


@dataclass
class Stack:
    relay: Relay
    ingress: Ingress
    sandbox: Sandbox

    def accepted(self, *mids: str) -> list[dict[str, Any]]:
        """The valid requests the sandbox accepted that carry any of `mids`."""
        return [
            r for r in self.sandbox.requests() if r["valid"] and set(posted_ids([r])) & set(mids)
        ]

    def wait_posted(self, *mids: str, timeout: float = 30) -> list[dict[str, Any]]:
        wait_for(
            lambda: set(mids) <= set(posted_ids(self.accepted(*mids))), timeout, f"{mids} posted"
        )
        return self.accepted(*mids)


def mid(label: str = "m") -> str:
    """A message id of the test's own."""
    return f"{label}-{uuid.uuid4().hex[:10]}"


@contextmanager
def running_stack(
    tmp: Path, redis_url: str, sandbox: Sandbox, config: str, env: dict[str, str]
) -> Iterator[Stack]:
    """A worker and an ingress on `config` (TOML, sandbox placeholders) with `env` set."""
    patch = pytest.MonkeyPatch()
    for name, value in env.items():
        patch.setenv(name, value)
    relay = Relay(tmp, redis_url, sandbox.url, patch, config)
    relay.env.update(env)
    try:
        relay.start_worker()
        yield Stack(relay, Ingress(relay), sandbox)
    finally:
        relay.stop_all()
        patch.undo()
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, sandbox_server: Sandbox
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ingress")
    with running_stack(tmp, redis_url, sandbox_server, INGRESS_CONFIG, SECRETS) as running:
        yield running
