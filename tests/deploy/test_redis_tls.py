"""Redis over TLS as the example overlay writes it: a real redis-server serving TLS only, with
the ACL users, and a worker and the CLI connecting with the example's rediss:// URL (its query
options as written, only the host, password and CA path the test's own)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deploy.test_redis_acl import ENV, PASSWORDS, render
from tests.deploy.uses import DEPLOY
from tests.support.harness import Relay, event, wait_for
from worker.dev.local_redis import LocalRedis, free_port
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)
EXAMPLE = DEPLOY / "k8s" / "overlays" / "example" / "secrets"


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        ip = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([ip]), False)
    return builder.sign(signer, hashes.SHA256())


def _pem(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRedis, str]]:
    """A redis-server speaking TLS only (a CA of the test's own) with the rendered ACL file."""
    tmp = tmp_path_factory.mktemp("tls")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, None, ca_key)
    server = _certificate("127.0.0.1", key, ca.subject, ca_key)
    pem = serialization.Encoding.PEM
    ca_path = _pem(tmp / "ca.crt", ca.public_bytes(pem))
    cert_path = _pem(tmp / "server.crt", server.public_bytes(pem))
    key_path = _pem(
        tmp / "server.key",
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    acl = tmp / "users.acl"
    acl.write_text(render(ENV).stdout)
    port = free_port()
    options = ("--port", "0", "--tls-port", str(port), "--tls-cert-file", cert_path)
    options += ("--tls-key-file", key_path, "--tls-ca-cert-file", ca_path)
    options += ("--tls-auth-clients", "no", "--aclfile", str(acl))
    server_process = _TlsRedis(port, options, ca_path).start()
    yield server_process, ca_path
    server_process.stop()


class _TlsRedis(LocalRedis):
    def __init__(self, port: int, options: tuple[str, ...], ca: str) -> None:
        super().__init__(port=free_port(), extra=options)
        self.tls_port, self.ca = port, ca

    def argv(self) -> list[str]:
        argv = super().argv()
        at = argv.index("--port")
        return argv[:at] + argv[at + 2 :]  # the plain port is --port 0 in `extra`

    def start(self, timeout: float = 10.0) -> _TlsRedis:
        with open(os.path.join(self.dir, "redis.log"), "wb") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis.from_url(example_url("ops", self), socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, timeout, "redis-server over TLS")
        client.close()
        return self


def example_url(user: str, server: _TlsRedis) -> str:
    """The example's REDIS_URL for `user` (the workers' file's form), pointed at `server`."""
    lines = (EXAMPLE / "worker.env.example").read_text().splitlines()
    [url] = [line.split("=", 1)[1] for line in lines if line.startswith("REDIS_URL=")]
    url = url.replace("relay-worker:PASSWORD", f"relay-{user}:{PASSWORDS[user]}")
    url = url.replace("redis.relay.svc.cluster.local:6380", f"127.0.0.1:{server.tls_port}")
    return url.replace("/etc/relay-redis-tls/ca.crt", server.ca)


def test_the_examples_rediss_url_carries_a_worker_and_the_cli_over_tls(
    tls_redis: tuple[LocalRedis, str],
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a worker and the CLI with the example's rediss:// URL, each as its own user
    server = tls_redis[0]
    assert isinstance(server, _TlsRedis)
    relay = Relay(tmp_path, example_url("worker", server), sandbox.url, monkeypatch)
    for name, value in (("RELAY_KEY_PREFIX", "relay"), ("RELAY_QUEUE", "relay")):
        relay.env[name] = value
        monkeypatch.setenv(name, value)
    try:
        relay.start_worker()
        relay.env["REDIS_URL"] = example_url("ops", server)

        # when an event is pushed through the CLI
        pushed = relay.push(event("md", "delivered"))
        relay.env["REDIS_URL"] = example_url("worker", server)
        relay.wait_settled(1)
    finally:
        relay.stop_all()

    # then it was delivered; and nothing reaches Redis without TLS
    assert pushed.returncode == 0, pushed.stderr
    plain = redis.Redis(port=server.tls_port, socket_connect_timeout=1, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()
