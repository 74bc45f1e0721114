"""A pipeline of the test process's own, on a relay's keys and configuration, for tests that
inject a fault into the relay's code (real Redis, real sandbox target)."""

from __future__ import annotations

import pytest

from tests.support.harness import Relay
from worker.config import load_config
from worker.delivery import runtime
from worker.delivery.pipeline import Pipeline


def local_pipeline(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """The relay's pipeline, installed as this process's (what `run_local` uses)."""
    for name in ("SF_TOKEN", "MD_TOKEN"):
        monkeypatch.setenv(name, relay.env[name])
    built = Pipeline(load_config(relay.env["RELAY_CONFIG"]))
    monkeypatch.setattr(runtime, "_pipeline", built)
    return built
