"""Where the ingress puts what it takes, all in Redis and all before it answers 200: events on
the inbox, receipts in the waiting room, counts; unreadable callbacks as dead letters."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from tasks.upstream.receipts import Receipt
from tasks.upstream.request import RawRequest
from worker.ingress.batching import GroupCommit
from worker.intake.correlate import Checked
from worker.intake.inbox import InboxFull
from worker.settings import get_settings
from worker.sources import Source
from worker.stores.connection import get_redis, key
from worker.stores.correlations import (
    ACCEPT,
    Correlations,
    Plan,
    accept_args,
    count,
    needing_records,
    plan,
    record_key,
)
from worker.stores.deadletters import DeadLetter, DeadLetterStore

KEEP_OF_BODY = 1 << 20  # an unreadable body is kept whole up to the ingress's own limit

STORE_ERRORS = (redis.RedisError, OSError, asyncio.TimeoutError, InboxFull)
"""What means "Redis cannot take it now": answer 503, the provider tries again."""


class Storage:
    """The ingress's writes: one asyncio Redis client per process (per event loop)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or get_settings().redis_url
        self.inbox = key("inbox")
        self._client: aioredis.Redis | None = None
        self._accept: Any = None
        self._commit: GroupCommit[tuple[str, Plan]] = GroupCommit(self._write)

    @property
    def redis(self) -> aioredis.Redis:
        if self._client is None:  # made inside the running event loop, on first use
            self._client = aioredis.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=2,
                max_connections=256,
            )
            self._accept = self._client.register_script(ACCEPT)
        return self._client

    async def accept(self, source: Source, receipts: list[Receipt], received_ms: int) -> Plan:
        """Store every receipt (an event, or a wait for its record) in one transaction."""
        client = self.redis  # made (with its scripts) on first use
        wanted = needing_records(source, receipts)
        records: dict[str, Any] = {}
        if wanted:
            keys = [record_key(source.name, r.provider_message_id) for r in wanted]
            values = await client.mget(keys)
            records = {r.provider_message_id: v for r, v in zip(wanted, values, strict=True)}
        result = plan(source, receipts, records, received_ms)
        if result.waiting:
            async with client.pipeline(transaction=True) as pipe:
                result.queue(pipe, source.name, time.time())
                await pipe.execute()
        else:  # the usual request: its events go in its moment's group commit
            await self._commit.submit((source.name, result))
        return result

    async def _write(self, plans: list[tuple[str, Plan]]) -> None:
        """One group commit: every plan's events and counts in one script call; `InboxFull`
        (answered 503: the providers try again later) past the inbox's bound."""
        bound = get_settings().inbox_max
        if int(await self._accept(keys=[self.inbox], args=accept_args(plans, bound))) < 0:
            raise InboxFull(0, bound)

    async def count(self, source: str, outcome: str) -> None:
        """Count one receipt outcome (refused, invalid); a failure to count is not a failure
        to answer."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                count(pipe, source, outcome)
                await pipe.execute()
        except STORE_ERRORS:
            pass

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 2.0))
        except STORE_ERRORS:
            return False

    async def keep_invalid(self, source: Source, request: RawRequest, problem: str) -> str:
        """Keep an authenticated callback that cannot be read as an `invalid` dead letter with
        its raw body; return the dead letter's id."""
        letter = DeadLetter(
            reason="invalid",
            error=f"source {source.name} ({source.kind}): {problem}",
            event=kept_request(source, request),
            target=source.target,
        )
        await asyncio.to_thread(_add_invalid, letter, source.name)
        return letter.id

    async def register(self, records: list[Checked]) -> int:
        """Store correlation records and release what waits for them (the sync store, in a
        thread: registrations are not the hot path)."""
        return await asyncio.to_thread(lambda: Correlations().register(records))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def kept_request(source: Source, request: RawRequest) -> dict[str, Any]:
    """What a dead letter keeps of a callback: source, method, content type and the body
    (text when it is UTF-8, else base64). Not the headers: they carry the signature."""
    kept: dict[str, Any] = {
        "source": source.name,
        "kind": source.kind,
        "method": request.method,
        "content_type": request.header("content-type"),
    }
    body = request.body[:KEEP_OF_BODY]
    try:
        kept["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        kept["body_base64"] = base64.b64encode(body).decode()
    return kept


def _add_invalid(letter: DeadLetter, source: str) -> None:
    DeadLetterStore().add(letter)
    count(get_redis(), source, "invalid")
