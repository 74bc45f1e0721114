"""A real Flower for tests: started against the relay's Redis, read through its HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from tests.support.harness import Relay, wait_for
from worker.dev.local_redis import free_port
from worker.dev.processes import flower_argv, start_group


def get(url: str, **params: Any) -> Any:
    """GET a Flower API URL; its JSON."""
    with requests.get(url, params=params, timeout=5) as answer:
        answer.raise_for_status()
        return answer.json()


def start_flower(relay: Relay) -> Iterator[str]:
    """Flower on a free port, answering its API; yields its URL. Workers the relay starts
    afterwards send task events from the start (Flower would turn them on within seconds)."""
    port = free_port()
    env = {**relay.env, "FLOWER_UNAUTHENTICATED_API": "true"}
    relay.env["RELAY_TASK_EVENTS"] = "1"
    process = start_group(flower_argv(port), relay.tmp / "flower.log", env)
    relay.workers.append(process)  # stopped with the workers
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            get(f"{url}/api/workers")
            return True
        except requests.RequestException:
            return False

    wait_for(up, 30, "flower to answer")
    yield url


def tasks(flower: str, **params: Any) -> list[dict[str, Any]]:
    """Flower's tasks (`search=`, `state=` ... as its API takes them)."""
    return list(get(f"{flower}/api/tasks", **params).values())
