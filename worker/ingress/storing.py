"""Where the ingress puts what it takes, all in Redis and all before it answers 200: events on
the inbox, receipts in the waiting room and counts, within the source's quotas and the inbox's
bound (one script call per group commit, `worker.stores.take`); receipts the source may not
have posted, and callbacks that cannot be read, as dead letters of the source's own."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections import Counter
from typing import Any

import redis
import redis.asyncio as aioredis

from tasks.upstream.receipts import Receipt
from tasks.upstream.request import RawRequest
from worker.ingress.batching import GroupCommit
from worker.intake.correlate import Checked
from worker.settings import get_settings
from worker.sources import Source
from worker.stores.bounds import InboxFull, QuotaExceeded
from worker.stores.connection import get_redis, key
from worker.stores.correlations import Correlations, count, record_key
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.planning import plan
from worker.stores.take import FULL, RATE, REPLAN, TAKE, WAITING, Plan, outcomes, take_args

KEEP_OF_BODY = 4096  # of an unreadable body: its first 4 KiB, its length and its SHA-256

STORE_ERRORS = (redis.RedisError, OSError, asyncio.TimeoutError, InboxFull)
"""What means "Redis cannot take it now": answer 503, the provider tries again."""
Outcome = tuple[str, int]


class Storage:
    """The ingress's writes: one asyncio Redis client per process (per event loop)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or get_settings().redis_url
        self.keys = [key("inbox"), key("waiting", "items"), key("waiting")]
        self._client: aioredis.Redis | None = None
        self._take: Any = None
        self._commit: GroupCommit[tuple[Source, Plan], Outcome] = GroupCommit(self._write)

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
            self._take = self._client.register_script(TAKE)
        return self._client

    async def accept(self, source: Source, receipts: list[Receipt], received_ms: int) -> Plan:
        """Store what every receipt comes to, or nothing: `QuotaExceeded` past the source's
        quotas, `InboxFull` past the inbox's bound, `TooManyIds` (before anything is read)
        for a reference naming too many message ids."""
        result = plan(source, receipts, None, received_ms)
        if result.lookups:  # some receipt goes where its record says, if it has one
            records = await self._records(source, result.lookups)
            result = plan(source, receipts, records, received_ms)
        outcome, after = await self._commit.submit((source, result))
        if outcome == REPLAN:  # a record exists for a receipt its reference routed: it wins
            every = [r.provider_message_id for r in receipts if r.status is not None]
            result = plan(source, receipts, await self._records(source, every), received_ms)
            outcome, after = await self._commit.submit((source, result))
        if outcome in (RATE, WAITING):
            raise QuotaExceeded(source.name, outcome, after)
        if outcome == FULL:
            raise InboxFull(0, get_settings().inbox_max)
        if result.refused:
            await asyncio.to_thread(_keep, source, result.refused)
        return result

    async def _records(self, source: Source, pmids: list[str]) -> dict[str, Any]:
        """The stored records of `pmids` (None where there is none), in one round trip."""
        if not pmids:
            return {}
        values = await self.redis.mget([record_key(source.name, p) for p in pmids])
        return dict(zip(pmids, values, strict=True))

    async def _write(self, batch: list[tuple[Source, Plan]]) -> list[Outcome]:
        """One group commit: every plan checked and written (or not) in one script call."""
        if self._take is None:
            self.redis  # noqa: B018 -- made (with its script) on first use
        args = take_args(batch, get_settings().inbox_max, time.time())
        return outcomes(await self._take(keys=self.keys, args=args))

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
        """Keep an authenticated callback that cannot be read as an `invalid` dead letter of
        the source's own (a prefix and a hash of its body); return the dead letter's id."""
        letter = DeadLetter(
            reason="invalid",
            error=f"source {source.name} ({source.kind}): {problem}",
            event=kept_request(source, request),
            target=source.target,
        )
        await asyncio.to_thread(_keep, source, [letter])
        return letter.id

    async def register(self, records: list[Checked]) -> int:
        """Store correlation records and release what waits for them (the sync store, in a
        thread: registrations are not the hot path)."""
        return await asyncio.to_thread(lambda: Correlations().register(records))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client, self._take = None, None


def kept_request(source: Source, request: RawRequest) -> dict[str, Any]:
    """What a dead letter keeps of a callback: source, method, content type, the body's size
    and SHA-256, and its first 4 KiB (text when it is UTF-8, else base64; whole when it is no
    longer). Not the headers: they carry the signature."""
    kept: dict[str, Any] = {
        "source": source.name,
        "kind": source.kind,
        "method": request.method,
        "content_type": request.header("content-type"),
        "body_bytes": len(request.body),
        "body_sha256": hashlib.sha256(request.body).hexdigest(),
    }
    body = request.body[:KEEP_OF_BODY]
    try:
        kept["body"] = body.decode("utf-8")
    except UnicodeDecodeError:  # or a multi-byte character cut at the 4 KiB mark
        kept["body_base64"] = base64.b64encode(body).decode()
    return kept


def _keep(source: Source, letters: list[DeadLetter]) -> None:
    """Dead letters in the source's own store (its max_dead_letters), counted by reason."""
    DeadLetterStore().add_all(letters, source.name, source.max_dead_letters)
    pipe = get_redis().pipeline(transaction=False)
    for reason, n in Counter(letter.reason for letter in letters).items():
        count(pipe, source.name, reason, n)
    pipe.execute()
