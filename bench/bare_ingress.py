"""The ceiling for the ingress bench: the same stack (uvicorn, httptools, uvloop, redis.asyncio)
with an ASGI app that only reads the body and RPUSHes it to Redis, then answers 200.

    uvicorn bench.bare_ingress:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import redis.asyncio as aioredis

Message = MutableMapping[str, Any]
_client: aioredis.Redis | None = None


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    global _client
    if scope["type"] != "http":
        return
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["REDIS_URL"], max_connections=256)
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await _client.rpush("bench:bare", body)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})
