"""No secret the relay knows leaves it: not in Sentry, logs, Flower, dead letters, the CLI's
output or metrics, even when a target and a token endpoint echo every secret back.

Real processes: a password-protected redis-server of the test's own, a worker, Flower, the
CLI, a Sentry stand-in and two hostile local endpoints (a target and a token endpoint) whose
error answers quote the request's credentials and every other secret of the process.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.harness import Relay, event, wait_for
from tests.support.json_endpoint import JsonEndpoint
from tests.support.sentry_standin import SentryStandIn
from worker.dev.local_redis import LocalRedis, free_port
from worker.dev.processes import flower_argv, start_group

pytestmark = pytest.mark.timeout(150)

REDIS_PASSWORD = "sekrit-redis-7f3a9c"
SECRETS = {
    "MD_ECHO_TOKEN": "sekrit-target-token-41d2",
    "MD_CLIENT_SECRET": "sekrit-client-secret-9b77",
    "TWILIO_AUTH_TOKEN": "sekrit-source-token-c0de",
    "RELAY_INGRESS_TOKEN": "sekrit-ingress-token-5e11",
    "RELAY_SENTINEL_PASSWORD": "sekrit-sentinel-pw-0a0a",
}
EVERY_SECRET = [REDIS_PASSWORD, *SECRETS.values()]
BASIC = base64.b64encode(f"md-client:{SECRETS['MD_CLIENT_SECRET']}".encode()).decode()

CONFIG = """\
[retry]
base_delay = 0.2
max_delay = 0.5
max_attempts = 2

[targets.md-echo]
kind = "medallia"
base_url = "{echo}/medallia"
channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"
auth = {{ type = "bearer", token = "${{MD_ECHO_TOKEN}}" }}

[targets.md-cc]
kind = "medallia"
base_url = "{echo}/medallia"
channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"

[targets.md-cc.auth]
type = "client_credentials"
token_url = "{echo}/oauth/token"
client_id = "md-client"
client_secret = "${{MD_CLIENT_SECRET}}"

[sources.tw]
kind = "twilio"
auth_token = "${{TWILIO_AUTH_TOKEN}}"
target = "md-echo"
"""


class Echo(JsonEndpoint):
    """A hostile target and token endpoint: every error answer quotes what it was sent (its
    credentials and body) and, to stand for any other way a secret could reach the relay's
    text, every secret of the process."""

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, Any]:
        quoted = [headers.get("Authorization", ""), body.decode()[:200], *EVERY_SECRET]
        return (401 if "token" in path else 400), {"echo": quoted}


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[LocalRedis]:
    server = LocalRedis(password=REDIS_PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.stop()


@pytest.fixture
def relay_with_secrets(
    tmp_path: Path, locked_redis: LocalRedis, echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    config = CONFIG.replace("{echo}", echo.base)
    instance = Relay(tmp_path, locked_redis.url, echo.base, monkeypatch, config=config)
    instance.env.update(SECRETS)
    try:
        yield instance
    finally:
        instance.stop_all()


def _flower(relay: Relay) -> str:
    port = free_port()
    env = {**relay.env, "FLOWER_UNAUTHENTICATED_API": "true"}
    relay.workers.append(start_group(flower_argv(port), relay.tmp / "flower.log", env))
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/api/workers", timeout=2).ok
        except requests.RequestException:
            return False

    wait_for(up, 30, "flower to answer")
    return url


def _leaks(text: str) -> list[str]:
    return [s for s in [*EVERY_SECRET, BASIC] if s in text]


def test_no_secret_reaches_sentry_logs_flower_dead_letters_cli_or_metrics(
    relay_with_secrets: Relay,
) -> None:
    # given a worker on a password-protected Redis, reporting to Sentry, watched by Flower,
    # sending to targets that echo every secret back
    relay = relay_with_secrets
    sentry = SentryStandIn().start()
    metrics_port = free_port()
    relay.env.update(
        SENTRY_DSN=sentry.dsn, RELAY_TASK_EVENTS="1", RELAY_METRICS_PORT=str(metrics_port)
    )
    flower = _flower(relay)
    relay.start_worker()

    # when one event goes to each target and both become dead letters
    relay.push(event("md-echo", "delivered"), event("md-cc", "delivered"))
    wait_for(lambda: len(relay.dead_letters()) == 2, 60, "two dead letters")
    wait_for(lambda: len(sentry.events()) >= 2, 30, "two Sentry events")
    tasks = requests.get(f"{flower}/api/tasks", timeout=5).json()
    metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    letters = relay.dead_letters()
    shown = [relay.cli("dlq", "show", letter.id, "--json").stdout for letter in letters]
    cli = [relay.cli(*args) for args in (["dlq", "list"], ["status"], ["check-config"])]
    relay.stop_all()
    sentry.stop()

    # then the echoes were read (the letters say what the targets answered) ...
    errors = {letter.target: letter.error for letter in letters}
    assert "HTTP 400" in errors["md-echo"] and "[Filtered]" in errors["md-echo"]
    assert "HTTP 401" in errors["md-cc"] and "[Filtered]" in errors["md-cc"]
    # ... and no secret is anywhere an operator or a third party reads
    logs = "".join(p.read_text(errors="replace") for p in relay.tmp.glob("*.log"))
    assert _leaks(sentry.everything().decode(errors="replace")) == []
    assert _leaks(logs) == []
    assert _leaks(json.dumps(tasks)) == [] and tasks
    assert _leaks(json.dumps([letter.error for letter in letters]) + "".join(shown)) == []
    assert _leaks("".join(c.stdout + c.stderr for c in cli)) == []
    assert _leaks(metrics) == [] and "relay_deliveries_total" in metrics
