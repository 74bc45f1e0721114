"""When Redis cannot take receipts, or the inbox is at its bound, the ingress answers 503 (the
provider tries again) and stores nothing of the request; its health check fails without
Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.harness import Relay
from tests.support.ingress import INGRESS_CONFIG, SECRETS, Ingress, sf_reference
from worker.dev.callbacks import Message
from worker.dev.local_redis import free_port
from worker.dev.sandbox import Sandbox
from worker.intake.inbox import Inbox


@pytest.fixture
def ingress_with(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Ingress]]:
    """An ingress (and no worker) on the session's Redis, with extra environment."""
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, INGRESS_CONFIG)
    relay.env.update(SECRETS)
    try:
        yield lambda **env: Ingress(relay, **env)
    finally:
        relay.stop_all()


def test_without_redis_callbacks_are_503_and_health_fails(
    ingress_with: Callable[..., Ingress],
) -> None:
    ingress = ingress_with(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert ingress.get("/healthz")[0] == 503
    message = Message("SM1", "delivered", reference=sf_reference("m1", conversation=True))
    assert ingress.post("tw", message)[0] == 503
    assert ingress.post("smpp", Message("1", "DELIVRD"))[0] == 503


def test_past_the_inbox_bound_callbacks_are_503_and_nothing_is_half_stored(
    ingress_with: Callable[..., Ingress],
) -> None:
    ingress = ingress_with(RELAY_INBOX_MAX="2")  # no worker: the inbox only fills
    for n in (1, 2):
        message = Message(f"SM{n}", "delivered", reference=sf_reference(f"m{n}", conversation=True))
        assert ingress.post("tw", message)[0] == 200
    assert ingress.post("tw", Message("SM3", "sent", reference=sf_reference("m3")))[0] == 503
    assert Inbox().depth() == 2
