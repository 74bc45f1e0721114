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
from worker.intake.inbox import Inbox


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


def test_past_the_inbox_bound_callbacks_are_503_and_nothing_is_half_stored(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, INGRESS_CONFIG)
    relay.env.update(SECRETS)
    try:
        ingress = Ingress(relay, RELAY_INBOX_MAX="2")  # and no worker: the inbox only fills
        first = Message("SM1", "delivered", reference=sf_reference("m1", conversation=True))
        second = Message("SM2", "delivered", reference=sf_reference("m2", conversation=True))
        assert ingress.post("tw", first)[0] == 200
        assert ingress.post("tw", second)[0] == 200
        assert ingress.post("tw", Message("SM3", "sent", reference=sf_reference("m3")))[0] == 503
        assert Inbox().depth() == 2
    finally:
        relay.stop_all()
