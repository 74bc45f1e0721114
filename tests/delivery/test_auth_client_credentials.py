"""Medallia's OAuth2 client credentials against a local token endpoint."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support.json_endpoint import JsonEndpoint
from worker.delivery.auth import AuthError, ClientCredentials

pytestmark = pytest.mark.timeout(30)


class TokenEndpoint(JsonEndpoint):
    """Checks HTTP Basic client credentials and the grant; hands out numbered tokens."""

    def __init__(self) -> None:
        self.grants: list[dict[str, list[str]]] = []
        self.expires_in = 3600
        self.delay = 0.0
        super().__init__()
        self.url = f"{self.base}/oauth/token"

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, Any]:
        basic = base64.b64encode(b"client-id:client-secret").decode()
        if headers.get("Authorization") != f"Basic {basic}":
            return 401, {"error": "invalid_client"}
        time.sleep(self.delay)
        self.grants.append(parse_qs(body.decode()))
        return 200, {"access_token": f"token-{len(self.grants)}", "expires_in": self.expires_in}


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    server = TokenEndpoint()
    yield server
    server.stop()


def _auth(endpoint: TokenEndpoint, secret: str = "client-secret") -> ClientCredentials:
    return ClientCredentials(
        {
            "token_url": endpoint.url,
            "client_id": "client-id",
            "client_secret": secret,
            "scope": "adapter",
        }
    )


def test_a_token_is_fetched_once_cached_and_fetched_again_after_a_401(
    endpoint: TokenEndpoint,
) -> None:
    # given the provider
    auth = _auth(endpoint)

    # when headers are asked for twice, then after the target answered 401
    first = auth.headers(None)  # type: ignore[arg-type]
    second = auth.headers(None)  # type: ignore[arg-type]
    auth.invalidate()
    third = auth.headers(None)  # type: ignore[arg-type]

    # then one grant served the first two, and a new one the third
    assert first == second == {"Authorization": "Bearer token-1"}
    assert third == {"Authorization": "Bearer token-2"}
    assert endpoint.grants[0] == {"grant_type": ["client_credentials"], "scope": ["adapter"]}


def test_a_token_is_renewed_before_it_expires(endpoint: TokenEndpoint) -> None:
    # given tokens that live no longer than the renewal margin
    endpoint.expires_in = 30
    auth = _auth(endpoint)

    # when headers are asked for twice, then each time a fresh token is fetched
    assert auth.headers(None) != auth.headers(None)  # type: ignore[arg-type]


def test_wrong_client_credentials_are_an_auth_error(endpoint: TokenEndpoint) -> None:
    with pytest.raises(AuthError, match="HTTP 401"):
        _auth(endpoint, secret="wrong").headers(None)  # type: ignore[arg-type]


def test_a_wait_for_a_token_another_thread_fetches_ends_at_the_callers_deadline(
    endpoint: TokenEndpoint,
) -> None:
    # given a token endpoint that takes 3 s, and one thread already fetching from it
    endpoint.delay = 3.0
    auth = _auth(endpoint)
    fetching = threading.Thread(target=auth.headers, args=(None,))
    fetching.start()
    time.sleep(0.2)

    # when a second thread, whose task has half a second left, asks for headers
    started = time.monotonic()
    with pytest.raises(AuthError, match="took too long"):
        auth.headers(None, deadline=time.monotonic() + 0.5)  # type: ignore[arg-type]

    # then it gives up at its deadline instead of waiting out the other's fetch
    assert time.monotonic() - started < 1.5
    fetching.join(timeout=10)
