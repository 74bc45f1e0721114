"""The ingress's protocol class in a real uvicorn server (in this process, so that its
connections can be looked into): what it keeps of a request answered before its body was
read, and a pipelined request behind it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from tests.support.edge import head, read_answer
from worker.dev.local_redis import free_port
from worker.ingress.protocol import GuardedHttp

pytestmark = pytest.mark.timeout(60)


async def refuse_or_echo(scope: Any, receive: Any, send: Any) -> None:
    """401 at once for /refuse; else the body, read whole, echoed."""
    if scope["type"] != "http":
        return
    body = b""
    if scope["path"] != "/refuse":
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    status = 401 if scope["path"] == "/refuse" else 200
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def served() -> Iterator[uvicorn.Server]:
    config = uvicorn.Config(
        refuse_or_echo, port=free_port(), http=GuardedHttp, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def held_bytes(server: uvicorn.Server) -> int:
    """Body bytes the server's connections hold for requests in progress or answered."""
    return sum(len(c.cycle.body) for c in server.server_state.connections if c.cycle is not None)


def test_a_body_answered_before_it_was_read_is_let_go_at_once(served: uvicorn.Server) -> None:
    # given 20 clients whose posts are refused at once, each sending 200 KB and holding on
    port = served.config.port
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(head("POST", "/refuse", length=1 << 20) + b"x" * 200_000)
        answers = [read_answer(sock, 5.0) for sock in socks]
        time.sleep(0.2)

        # then none of what they sent is held while they hold on
        assert all(a is not None and a[0] == 401 for a in answers)
        assert held_bytes(served) == 0
    finally:
        for sock in socks:
            sock.close()


def test_a_pipelined_request_keeps_its_body(served: uvicorn.Server) -> None:
    # given two requests sent at once on one connection, the second with a body
    with socket.create_connection(("127.0.0.1", served.config.port), timeout=5) as sock:
        first = head("POST", "/echo", length=3) + b"one"
        second = head("POST", "/echo", length=70_000) + b"y" * 70_000
        sock.sendall(first + second)

        # then both are answered with their own bodies
        answers = [read_answer(sock, 5.0) for _ in range(2)]
        assert [(a[0], a[2]) if a else None for a in answers] == [
            (200, b"one"),
            (200, b"y" * 70_000),
        ]
