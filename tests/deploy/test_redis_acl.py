"""deploy/redis: the ACL users of each component, on a real redis-server started with the file
render-acl.sh writes. Each component does its real work under its own user (a worker delivers,
the ingress takes a callback, Flower shows tasks, the CLI reads and pushes, KEDA reads lengths),
and what a component must not do is refused (the ingress and Flower cannot queue a Celery
message, KEDA cannot write, nobody gets in without a user)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.deploy.uses import DEPLOY
from tests.support.harness import Relay, event, wait_for
from tests.support.ingress import INGRESS_CONFIG, Ingress, sf_reference
from worker.dev.callbacks import Message
from worker.dev.local_redis import LocalRedis, free_port
from worker.dev.processes import flower_argv, start_group
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(180)
RENDER = DEPLOY / "redis" / "render-acl.sh"
USERS = ("worker", "ingress", "flower", "ops", "keda")
PASSWORDS = {u: f"{u}password0123456789abcdef" for u in USERS}
ENV = {f"REDIS_{u.upper()}_PASSWORD": p for u, p in PASSWORDS.items()}
ADMIN = "testadminpassword0123456789"


def render(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(RENDER)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class AclRedis(LocalRedis):
    """A redis-server of the test's own, started with the rendered ACL file."""

    def __init__(self, acl: Path) -> None:
        super().__init__(extra=("--aclfile", str(acl)))

    def start(self, timeout: float = 10.0) -> AclRedis:
        with open(os.path.join(self.dir, "redis.log"), "wb") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        ops = self.client("ops")
        try:
            wait_for(_answers(ops), timeout, "redis-server with the ACL file")
        finally:
            ops.close()
        return self

    def url_for(self, user: str) -> str:
        return f"redis://relay-{user}:{PASSWORDS[user]}@127.0.0.1:{self.port}/0"

    def client(self, user: str) -> redis.Redis:
        return redis.Redis.from_url(self.url_for(user), socket_connect_timeout=1)


def _answers(client: redis.Redis) -> Any:
    def check() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    return check


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclRedis]:
    done = render(ENV)
    assert done.returncode == 0, done.stderr
    acl = tmp_path_factory.mktemp("acl") / "users.acl"
    # An administrator of the test's own, to read ACL LOG when a component is refused.
    acl.write_text(done.stdout + f"user test-admin on >{ADMIN} ~* &* +@all\n")
    server = AclRedis(acl).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"REDIS_FLOWER_PASSWORD": "change-me"}, "set REDIS_FLOWER_PASSWORD"),
        ({"REDIS_KEDA_PASSWORD": ""}, "set REDIS_KEDA_PASSWORD"),
        ({"REDIS_OPS_PASSWORD": "short"}, "REDIS_OPS_PASSWORD is shorter"),
        ({"REDIS_OPS_PASSWORD": "with/slash@and:colon0123"}, "letters and digits only"),
    ],
)
def test_the_acl_file_is_not_written_with_a_missing_or_example_password(
    change: dict[str, str], said: str
) -> None:
    done = render({**ENV, **change})

    assert done.returncode == 2 and done.stdout == ""
    assert said in done.stderr


def test_the_rendered_file_holds_hashes_not_passwords() -> None:
    text = render(ENV).stdout

    assert not any(p in text for p in PASSWORDS.values())
    assert text.startswith("user default off\n") and "\n#" not in text
    assert {line.split()[1] for line in text.splitlines()} == {"default"} | {
        f"relay-{u}" for u in USERS
    }


def test_nobody_gets_in_without_a_user(acl_redis: AclRedis) -> None:
    anonymous = redis.Redis(port=acl_redis.port, socket_connect_timeout=1)
    with pytest.raises(redis.AuthenticationError):
        anonymous.get("relay:inbox")
    anonymous.close()


@pytest.mark.parametrize(
    ("user", "command"),
    [
        ("ingress", ("LPUSH", "relay", "{}")),  # a Celery message of its own making
        ("ingress", ("PUBLISH", "/0.celery.pidbox", "{}")),  # a remote control command
        ("ingress", ("CONFIG", "GET", "*")),
        ("flower", ("LPUSH", "relay", "{}")),  # Flower's API cannot run relay.deliver
        ("keda", ("RPUSH", "relay:inbox", "{}")),
        ("keda", ("GET", "relay:dlq")),
        ("worker", ("FLUSHALL",)),
        ("ops", ("KEYS", "*")),
    ],
)
def test_what_a_component_must_not_do_is_refused(
    acl_redis: AclRedis, user: str, command: tuple[str, ...]
) -> None:
    client = acl_redis.client(user)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*command)
    client.close()


def test_keda_reads_the_lengths_it_scales_on(acl_redis: AclRedis) -> None:
    keda = acl_redis.client("keda")
    for key, length in (("relay:inbox", keda.llen), ("relay", keda.llen), ("unacked", keda.hlen)):
        assert keda.type(key) in (b"none", b"list", b"hash")
        assert length(key) >= 0
    keda.close()


def test_each_component_does_its_work_under_its_own_user(
    acl_redis: AclRedis, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a worker, an ingress and Flower, each with its own user and only its own secrets,
    # on the default key names
    relay = Relay(tmp_path, acl_redis.url_for("worker"), sandbox.url, monkeypatch, INGRESS_CONFIG)
    for name, value in (("RELAY_KEY_PREFIX", "relay"), ("RELAY_QUEUE", "relay")):
        relay.env[name] = value
        monkeypatch.setenv(name, value)
    try:
        _work_under_acl(relay, acl_redis)
    finally:
        relay.stop_all()


def _cli(relay: Relay, acl_redis: AclRedis, *args: str, stdin: str | None = None) -> str:
    """The CLI as an operator runs it: with the ops user."""
    saved = relay.env["REDIS_URL"]
    relay.env["REDIS_URL"] = acl_redis.url_for("ops")
    try:
        done = relay.cli(*args, stdin=stdin)
    finally:
        relay.env["REDIS_URL"] = saved
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _work_under_acl(relay: Relay, acl_redis: AclRedis) -> None:
    relay.env["RELAY_TASK_EVENTS"] = "1"
    relay.start_worker()
    # The ingress is not given the targets' secrets, nor the worker the sources' (Ingress adds
    # those to its own environment only).
    targets_secrets = {name: relay.env.pop(name) for name in ("SF_TOKEN", "MD_TOKEN")}
    ingress = Ingress(relay, REDIS_URL=acl_redis.url_for("ingress"))
    relay.env.update(targets_secrets)
    port = free_port()
    flower_env = {
        **relay.env,
        "REDIS_URL": acl_redis.url_for("flower"),
        "FLOWER_UNAUTHENTICATED_API": "true",
    }
    relay.workers.append(start_group(flower_argv(port), relay.tmp / "flower.log", flower_env))
    flower = f"http://127.0.0.1:{port}"
    wait_for(lambda: _flower_up(flower), 30, "Flower to answer")

    # when a provider's callback, a pushed event and a replayed nothing go through
    status, _ = ingress.post("tw", Message("SM-acl-1", "failed", reference=sf_reference("m-acl")))
    _cli(relay, acl_redis, "push", "-", stdin=f"{event('md', 'delivered')}".replace("'", '"'))
    wait_for(lambda: relay.settled(2), 60, "both events delivered")

    # then each component did its part with its own user
    assert status == 200
    assert "md" in _cli(relay, acl_redis, "status")
    _cli(relay, acl_redis, "dlq", "list")
    try:
        wait_for(lambda: _flower_tasks(flower) > 0, 60, "Flower to show the deliveries")
    except AssertionError:
        raise AssertionError(_refusals(acl_redis)) from None
    refused = requests.post(f"{flower}/api/task/async-apply/relay.deliver", json={}, timeout=10)
    time.sleep(0.5)
    assert refused.status_code >= 400
    ops = acl_redis.client("ops")
    assert ops.llen("relay") == 0  # nothing queued by Flower's API
    ops.close()


def _refusals(acl_redis: AclRedis) -> str:
    """What Redis refused, by whom (ACL LOG, read by the test's administrator)."""
    admin = redis.Redis(port=acl_redis.port, username="test-admin", password=ADMIN)
    entries = admin.execute_command("ACL", "LOG", "20")
    admin.close()
    return "\n".join(str(e) for e in entries)


def _flower_up(flower: str) -> bool:
    try:
        return requests.get(f"{flower}/api/workers", timeout=5).ok
    except requests.RequestException:
        return False


def _flower_tasks(flower: str) -> int:
    try:
        return len(requests.get(f"{flower}/api/tasks", timeout=5).json())
    except (requests.RequestException, ValueError):
        return 0
