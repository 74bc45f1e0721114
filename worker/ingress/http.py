"""The few pieces of ASGI the ingress needs: the request as received (its Host checked), its
announced length, its body within a cap and a deadline, and answers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from tasks.upstream.request import MAX_FORM_FIELDS, RawRequest

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]
TEXT = b"text/plain; charset=utf-8"
CLOSE = ((b"connection", b"close"),)
GUARDED = "relay.read_deadline"
"""A scope key `worker.ingress.protocol` sets: the server itself cuts a request off at the read
deadline, so the app need not time its body too (under another server it does)."""
# A Host header as RFC 9110 allows it: a name or IPv4 address (RFC 3986 reg-name characters,
# no userinfo) or a bracketed IPv6 literal, and an optional port of digits.
_HOST = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?")


class TooLarge(Exception):
    """The body is over its cap."""


class Disconnected(Exception):
    """The client went away before its body arrived."""


class ReadTimeout(Exception):
    """The body did not arrive within the read deadline."""


class Malformed(Exception):
    """The request cannot be what a provider sends (a Host that is not one): answer 400."""


def announced_length(scope: Scope) -> int | None:
    """The body's length as Content-Length announces it; None without one (chunked)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(scope: Scope, receive: Receive, limit: int, seconds: float) -> bytes:
    """The whole body; `TooLarge` as soon as it is known to exceed `limit` (by its
    Content-Length before reading anything, else while reading); `ReadTimeout` when it has not
    arrived within `seconds`."""
    length = announced_length(scope)
    if length is not None and length > limit:
        raise TooLarge
    if scope.get(GUARDED):  # the server holds the request to the deadline from its first byte
        return await _receive_body(receive, limit)
    try:
        async with asyncio.timeout(seconds):
            return await _receive_body(receive, limit)
    except TimeoutError:
        raise ReadTimeout from None


async def body_or_answer(
    scope: Scope, receive: Receive, send: Send, limit: int, seconds: float
) -> bytes | str:
    """The body (see `read_body`), or, when it cannot be had, the outcome to count after the
    answer was given: 413 past the cap, 408 past the deadline (both closing the connection),
    nothing to a client that went away."""
    try:
        return await read_body(scope, receive, limit, seconds)
    except TooLarge:
        await answer(send, 413, f"over {limit} bytes\n".encode(), headers=CLOSE)
        return "too_large"
    except ReadTimeout:
        await answer(send, 408, b"the body did not arrive in time\n", headers=CLOSE)
        return "read_timeout"
    except Disconnected:
        return "disconnected"


async def _receive_body(receive: Receive, limit: int) -> bytes:
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


def _host(scope: Scope, headers: list[tuple[str, str]]) -> str:
    """The Host the client called, checked; the server's address when it sent none."""
    host = next((v for k, v in headers if k == "host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        return f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    found = _HOST.fullmatch(host)
    if found is None or (found.group(1) is not None and int(found.group(1)) > 65535):
        raise Malformed("the Host header is not a host name and port")
    return host


def raw_request(scope: Scope, body: bytes, max_fields: int = MAX_FORM_FIELDS) -> RawRequest:
    """The request as the provider called it: scheme, Host header, raw path and query;
    `Malformed` for a Host that is not one."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    host = _host(scope, headers)
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    url = f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")
    return RawRequest.build(scope["method"], url, headers, body, max_fields)


async def answer(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes = TEXT,
    headers: Headers = (),
) -> None:
    """One complete response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def answer_json(send: Send, status: int, document: Any) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    await answer(send, status, body, b"application/json")


def unread_body(scope: Scope, cap: int) -> Headers:
    """The headers of an answer given before the body was read: none when what is left to come
    is at most `cap` bytes (the server passes it over and the connection serves the next
    request), else `Connection: close` (a body over its cap, or of unknown length, is not
    waited for)."""
    length = announced_length(scope)
    if length is not None and length <= cap:
        return ()
    has_body = length is not None or any(k == b"transfer-encoding" for k, _ in scope["headers"])
    return CLOSE if has_body else ()
