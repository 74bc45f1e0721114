"""When Redis cannot take receipts the ingress answers 503 (the provider tries again) and its
health check fails; nothing is answered 200 that was not stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.harness import Relay
from tests.support.ingress import INGRESS_CONFIG, SECRETS, Ingress, sf_reference
from worker.dev.callbacks import Message
from worker.dev.local_redis import free_port
from worker.dev.sandbox import Sandbox


def test_without_redis_callbacks_are_503_and_health_fails(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, INGRESS_CONFIG)
    relay.env.update(SECRETS)
    try:
        ingress = Ingress(relay, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
        assert ingress.get("/healthz")[0] == 503
        message = Message("SM1", "delivered", reference=sf_reference("m1", conversation=True))
        assert ingress.post("tw", message)[0] == 503
        assert ingress.post("smpp", Message("1", "DELIVRD"))[0] == 503
    finally:
        relay.stop_all()
