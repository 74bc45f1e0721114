"""The request as the ingress rebuilds it from ASGI's scope: a Host it cannot use is a
`Malformed` request (answered 400), anything else a URL every check can take without raising."""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.upstream.signatures import verify
from worker.ingress.http import Malformed, body_or_answer, raw_request


def scope(host: bytes | None, path: bytes = b"/v1/receipts/tw") -> dict[str, object]:
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if host is not None:
        headers.append((b"host", host))
    return {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": b"relay_ref=x",
        "headers": headers,
        "server": ("127.0.0.1", 8080),
    }


@pytest.mark.parametrize(
    "host",
    [b"hooks.example.com", b"hooks.example.com:443", b"127.0.0.1:8080", b"[::1]:8080", b"[::1]"],
)
def test_hosts_as_clients_send_them_make_the_url_as_called(host: bytes) -> None:
    request = raw_request(scope(host), b"")
    assert request.url == f"http://{host.decode()}/v1/receipts/tw?relay_ref=x"


@pytest.mark.parametrize(
    "host",
    [b"hooks.example.com:xyz", b"hooks.example.com:99999", b"[::1", b"a b", b":80", b"", b"a@b"],
)
def test_a_host_that_is_not_one_is_malformed(host: bytes) -> None:
    with pytest.raises(Malformed):
        raw_request(scope(host), b"")


def test_without_a_host_the_servers_address_is_used() -> None:
    assert raw_request(scope(None), b"").url.startswith("http://127.0.0.1:8080/")


@given(host=st.binary(max_size=60), path=st.binary(max_size=30))
def test_any_host_is_either_malformed_or_checkable_without_raising(
    host: bytes, path: bytes
) -> None:
    try:
        request = raw_request(scope(host, b"/v1/receipts/tw" + path), b"a=b")
    except Malformed:
        return
    secrets = {"auth_token": "t"}
    assert verify("twilio", secrets, request, time.time()) is not None


def test_under_a_server_that_does_not_hold_it_to_the_deadline_the_app_times_the_body() -> None:
    # given a request whose body never comes, on a server without the ingress's protocol
    async def never() -> dict[str, object]:
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    request = scope(b"hooks.example.com")
    request["headers"] = [(b"content-length", b"100")]

    # when the app reads it with a deadline of 0.2 s
    started = time.monotonic()
    outcome = asyncio.run(body_or_answer(request, never, send, 1000, 0.2))

    # then it answers 408 and closes the connection, in time
    assert outcome == "read_timeout" and time.monotonic() - started < 2
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
