"""Salesforce's JWT bearer flow against a local token endpoint, then through a real worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.harness import Relay, event
from tests.support.json_endpoint import JsonEndpoint
from worker.delivery.auth import AuthError, JwtBearer
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(90)
TOKEN = "sf-test-token"  # what the sandbox accepts for Salesforce


class TokenEndpoint(JsonEndpoint):
    """Checks each assertion with the public key, as Salesforce would, and counts grants."""

    def __init__(self, public_pem: bytes) -> None:
        self.grants: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.public_pem = public_pem
        super().__init__()
        self.url = self.base

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, dict[str, Any]]:
        form = parse_qs(body.decode())
        if self.fail_with:
            return self.fail_with, {"error": "invalid_grant"}
        assert path == "/services/oauth2/token"
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        claims = jwt.decode(
            form["assertion"][0], self.public_pem, algorithms=["RS256"], audience=self.url
        )
        self.grants.append(claims)
        return 200, {"access_token": TOKEN, "instance_url": self.url, "token_type": "Bearer"}


@pytest.fixture
def keys() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture
def endpoint(keys: tuple[str, bytes]) -> Iterator[TokenEndpoint]:
    server = TokenEndpoint(keys[1])
    yield server
    server.stop()


def test_the_assertion_carries_the_documented_claims_and_the_token_is_cached(
    keys: tuple[str, bytes], endpoint: TokenEndpoint
) -> None:
    # given the flow configured with a key whose newlines are escaped, as in one env line
    auth = JwtBearer(
        {
            "consumer_key": "3MVG9-key",
            "username": "relay@acme.example",
            "private_key": keys[0].replace("\n", "\\n"),
            "login_url": endpoint.url,
        }
    )

    # when headers are asked for twice, then again after a 401 dropped the token
    first = auth.headers(None)  # type: ignore[arg-type]
    auth.headers(None)  # type: ignore[arg-type]
    auth.invalidate()
    auth.headers(None)  # type: ignore[arg-type]

    # then the token was fetched twice, with iss/sub/aud as Salesforce requires
    assert first == {"Authorization": f"Bearer {TOKEN}"}
    assert len(endpoint.grants) == 2
    claims = endpoint.grants[0]
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        "3MVG9-key",
        "relay@acme.example",
        endpoint.url,
    )
    assert 0 < claims["exp"] - time.time() <= 180


def test_a_refused_grant_is_an_auth_error(keys: tuple[str, bytes], endpoint: TokenEndpoint) -> None:
    endpoint.fail_with = 400
    auth = JwtBearer(
        {"consumer_key": "k", "username": "u", "private_key": keys[0], "login_url": endpoint.url}
    )
    with pytest.raises(AuthError, match="HTTP 400"):
        auth.headers(None)  # type: ignore[arg-type]


def _jwt_relay(relay: Relay, keys: tuple[str, bytes], endpoint: TokenEndpoint) -> None:
    config = relay.tmp / "relay.toml"
    config.write_text(
        config.read_text().replace(
            'auth = { type = "bearer", token = "${SF_TOKEN}" }',
            'auth = { type = "jwt_bearer", consumer_key = "3MVG9-key", username = "relay@acme", '
            f'private_key = "${{SF_PRIVATE_KEY}}", login_url = "{endpoint.url}" }}',
        )
    )
    relay.env["SF_PRIVATE_KEY"] = keys[0]


def test_a_worker_delivers_with_a_token_from_the_jwt_flow(
    relay: Relay, sandbox: Sandbox, keys: tuple[str, bytes], endpoint: TokenEndpoint
) -> None:
    # given a Salesforce target authenticated by the JWT bearer flow
    _jwt_relay(relay, keys, endpoint)
    assert relay.cli("check-config").returncode == 0
    relay.start_worker()

    # when failures for three messages are pushed
    relay.push(event("sf", "failed", "m-1", "m-2", "m-3"))
    relay.wait_settled(1)

    # then all went out with the fetched token, fetched once
    assert [r["status"] for r in sandbox.requests()] == [202, 202, 202]
    assert len(endpoint.grants) == 1


INVALID_TOKEN = '{"code": 10004, "message": "invalid token", "success": false}'


@pytest.mark.parametrize(("refusals", "delivered"), [(1, True), (2, False)])
def test_an_invalid_token_answer_is_tried_once_more_with_a_fresh_token(
    relay: Relay,
    sandbox: Sandbox,
    keys: tuple[str, bytes],
    endpoint: TokenEndpoint,
    refusals: int,
    delivered: bool,
) -> None:
    # given a JWT-bearer target whose token Salesforce calls invalid (10004) `refusals` times
    _jwt_relay(relay, keys, endpoint)
    sandbox.add_fault(Fault(api="salesforce", status=401, times=refusals, body=INVALID_TOKEN))
    relay.start_worker()

    # when a failure is pushed
    relay.push(event("sf", "failed", "m-token"))
    relay.wait_settled(1)

    # then a new token was fetched and the request sent again at once: delivered when the
    # fresh token was accepted, a rejected dead letter when it was refused too
    assert len(endpoint.grants) == 2
    letters = relay.dead_letters()
    if delivered:
        assert letters == [] and relay.counts("sf") == {"delivered": 1}
    else:
        assert [d.reason for d in letters] == ["rejected"] and "10004" in letters[0].error
