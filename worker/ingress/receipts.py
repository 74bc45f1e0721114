"""POST /v1/receipts/{source}: a provider's callback, authenticated over the raw bytes before
anything is read, normalized, and stored in Redis before it is answered 200."""

from __future__ import annotations

import logging
import time

from tasks.upstream import NORMALIZERS, TooManyReceipts, Unreadable
from tasks.upstream.correlation import TooManyIds
from tasks.upstream.request import RawRequest
from tasks.upstream.signatures import verify, whatsapp_handshake
from worker.ingress.http import (
    TEXT,
    Disconnected,
    Receive,
    Scope,
    Send,
    TooLarge,
    answer,
    answer_json,
    raw_request,
    read_body,
)
from worker.ingress.storing import STORE_ERRORS, Storage
from worker.observe.metrics import INGRESS_RECEIPTS
from worker.observe.sentry import report_dead_letter
from worker.sources import Source
from worker.stores.bounds import QuotaExceeded
from worker.stores.take import Plan

log = logging.getLogger("relay.ingress")


class Receipts:
    """Takes callbacks for the configured sources; returns the outcome to count."""

    def __init__(self, sources: dict[str, Source], storage: Storage, max_bytes: int) -> None:
        self.sources = sources
        self.storage = storage
        self.max_bytes = max_bytes
        self._logged: dict[tuple[str, int], float] = {}  # when a refusal was last logged

    async def handle(self, scope: Scope, receive: Receive, send: Send, source: Source) -> str:
        method = scope["method"]
        if method == "GET" and source.kind == "whatsapp":
            return await self._handshake(scope, send, source)
        if method != "POST" and not (method == "GET" and source.kind == "smpp_dlr"):
            await answer(send, 405, b"use POST\n")
            return "not_allowed"
        try:
            body = await read_body(scope, receive, self.max_bytes)
        except TooLarge:
            await answer(send, 413, f"over {self.max_bytes} bytes\n".encode())
            return "too_large"
        except Disconnected:
            return "disconnected"
        request = raw_request(scope, body)
        refusal = verify(source.kind, source.secrets, request, time.time())
        if refusal is not None:
            log.warning("ingress: refused a request for source %s: %s", source.name, refusal)
            await self.storage.count(source.name, "refused")
            await answer(send, 401, b"not authenticated\n")
            return "refused"
        return await self._take(send, source, request)

    async def _take(self, send: Send, source: Source, request: RawRequest) -> str:
        """Normalize and store an authenticated callback's receipts; answer what became of
        them (200), or refuse the whole callback, storing nothing: 413 past `max_receipts`
        or 100 message ids in a reference, 429 past a quota, 503 when Redis cannot take it."""
        received_ms = int(time.time() * 1000)
        try:
            try:
                receipts = NORMALIZERS[source.kind](request, source.max_receipts)
            except TooManyReceipts as exc:
                return await self._refuse(send, source, 413, str(exc), "too_many_receipts")
            except Exception as exc:  # anything unreadable is kept, never lost
                return await self._invalid(send, source, request, exc)
            plan = await self.storage.accept(source, receipts, received_ms)
        except TooManyIds as exc:
            return await self._refuse(send, source, 413, f"a reference: {exc}", "too_many_ids")
        except QuotaExceeded as exc:
            await self._refuse(send, source, 429, str(exc), retry_after=exc.retry_after)
            return "quota_rate" if exc.reason == "rate" else "quota_waiting"
        except STORE_ERRORS as exc:
            log.warning("ingress: Redis cannot take source %s's receipts: %s", source.name, exc)
            await answer(send, 503, b"cannot store receipts now; try again\n")
            return "unavailable"
        return await self._accepted(send, source, plan)

    async def _accepted(self, send: Send, source: Source, plan: Plan) -> str:
        counts = {"accepted": len(plan.events), "waiting": len(plan.waiting)}
        counts["ignored"] = plan.ignored
        for letter in plan.refused:  # shown only when there are some
            counts[letter.reason] = counts.get(letter.reason, 0) + 1
        for outcome, n in counts.items():
            if n:
                INGRESS_RECEIPTS.labels(source.name, outcome).inc(n)
        if plan.refused:
            for letter in plan.refused:
                if letter.reason == "forbidden":  # a leaked token at work, perhaps: say so
                    report_dead_letter(letter, letter.target)
            log.warning(
                "ingress: source %s sent %d receipt(s) it may not have posted (%s); kept as "
                "its own dead letters, first %s",
                source.name,
                len(plan.refused),
                plan.refused[0].error[:300],
                plan.refused[0].id,
            )
        await answer_json(send, 200, counts)
        return "accepted" if plan.events or plan.waiting else "ignored"

    async def _refuse(
        self,
        send: Send,
        source: Source,
        status: int,
        problem: str,
        outcome: str = "",
        retry_after: int | None = None,
    ) -> str:
        """Refuse the whole callback (nothing of it stored); the outcome, counted by the
        caller as the request's (relay_ingress_requests_total). Logged once a minute per
        source and answer at most: a source over its quota may call thousands of times."""
        now = time.monotonic()
        if now - self._logged.get((source.name, status), -60.0) >= 60:
            self._logged[(source.name, status)] = now
            log.warning("ingress: refused a callback of source %s: %s", source.name, problem)
        body = f"{problem}\n".encode()
        headers = [(b"content-type", TEXT), (b"content-length", str(len(body)).encode())]
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return outcome

    async def _invalid(
        self, send: Send, source: Source, request: RawRequest, exc: Exception
    ) -> str:
        """Keep a callback that authenticated but cannot be read (a dead letter of the
        source's own); answer 200 so the provider does not repeat it for days."""
        problem = str(exc) if isinstance(exc, Unreadable) else f"unreadable ({exc!r})"
        letter = await self.storage.keep_invalid(source, request, problem[:500])
        log.warning(
            "ingress: source %s sent a request that cannot be read (%s); "
            "kept as invalid dead letter %s",
            source.name,
            problem[:200],
            letter,
        )
        await answer_json(send, 200, {"invalid": letter})
        return "invalid"

    async def _handshake(self, scope: Scope, send: Send, source: Source) -> str:
        """Meta's subscription handshake: echo hub.challenge when mode and token match."""
        challenge = whatsapp_handshake(source.secrets["verify_token"], raw_request(scope, b""))
        if challenge is None:
            await answer(send, 403, b"verification failed\n")
            return "refused"
        await answer(send, 200, challenge.encode())
        return "handshake"
