"""The few pieces of ASGI the ingress needs: the request as received, its body within a
limit, and answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tasks.upstream.request import RawRequest

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
TEXT = b"text/plain; charset=utf-8"


class TooLarge(Exception):
    """The body is over the limit (RELAY_INGRESS_MAX_BYTES)."""


class Disconnected(Exception):
    """The client went away before its body arrived."""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body; `TooLarge` as soon as it is known to exceed `limit` (by its
    Content-Length before reading anything, else while reading)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def raw_request(scope: Scope, body: bytes) -> RawRequest:
    """The request as the provider called it: scheme, Host header, raw path and query."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    host = next((v for k, v in headers if k == "host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    url = f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")
    return RawRequest.build(scope["method"], url, headers, body)


async def answer(send: Send, status: int, body: bytes = b"", content_type: bytes = TEXT) -> None:
    """One complete response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def answer_json(send: Send, status: int, document: Any) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    await answer(send, status, body, b"application/json")
