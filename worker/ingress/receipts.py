"""POST /v1/receipts/{source}: a provider's callback, judged from its head before its body is
read (the kind's cap against Content-Length, the token or the signature header's shape),
authenticated over the raw bytes, normalized, and stored in Redis before it is answered 200."""

from __future__ import annotations

import asyncio
import logging
import time

from tasks.upstream import NORMALIZERS, TooManyReceipts, Unreadable
from tasks.upstream.correlation import TooManyIds
from tasks.upstream.request import RawRequest
from tasks.upstream.signatures import check_body, check_head, whatsapp_handshake
from worker.ingress.admission import Admission
from worker.ingress.http import (
    CLOSE,
    Malformed,
    Receive,
    Scope,
    Send,
    announced_length,
    answer,
    answer_json,
    body_or_answer,
    raw_request,
    unread_body,
)
from worker.ingress.storing import STORE_ERRORS, Storage
from worker.observe.metrics import INGRESS_RECEIPTS
from worker.observe.sentry import report_dead_letter
from worker.settings import Settings
from worker.sources import Source
from worker.stores.bounds import QuotaExceeded
from worker.stores.take import Plan

log = logging.getLogger("relay.ingress")
BATCH_KINDS = frozenset({"whatsapp", "infobip"})  # JSON of many receipts: the larger cap
THREAD_OVER = 64 << 10  # a body this large is hashed in a thread: the event loop stays free
RETRY_SOON = ((b"retry-after", b"1"),)


class Receipts:
    """Takes callbacks for the configured sources; returns the outcome to count."""

    def __init__(
        self, sources: dict[str, Source], storage: Storage, settings: Settings, admission: Admission
    ) -> None:
        self.sources = sources
        self.storage = storage
        self.settings = settings
        self.admission = admission
        self._logged: dict[tuple[str, int], float] = {}  # when a refusal was last logged

    def cap(self, kind: str) -> int:
        """The body cap of a source kind: JSON batches RELAY_INGRESS_MAX_BYTES, one-message
        kinds RELAY_INGRESS_MAX_FORM_BYTES (never above the former)."""
        whole = self.settings.ingress_max_bytes
        return whole if kind in BATCH_KINDS else min(self.settings.ingress_max_form_bytes, whole)

    async def handle(self, scope: Scope, receive: Receive, send: Send, source: Source) -> str:
        method, cap = scope["method"], self.cap(source.kind)
        if method == "GET" and source.kind == "whatsapp":
            return await self._handshake(scope, send, source)
        if method != "POST" and not (method == "GET" and source.kind == "smpp_dlr"):
            await answer(send, 405, b"use POST\n", headers=unread_body(scope, cap))
            return "not_allowed"
        length = announced_length(scope)
        if length is not None and length > cap:
            await answer(send, 413, f"over {cap} bytes\n".encode(), headers=CLOSE)
            return "too_large"
        try:
            head = raw_request(scope, b"", self.settings.ingress_max_form_fields)
        except Malformed as exc:
            await answer(send, 400, f"{exc}\n".encode(), headers=unread_body(scope, cap))
            return "malformed"
        now = time.time()
        refusal = check_head(source.kind, source.secrets, head, now)
        if refusal is not None:
            return await self._refuse(scope, send, source, refusal, cap)
        size = cap if length is None else length
        if not self.admission.reserve(size):
            await answer(send, 503, b"busy; try again\n", headers=self._busy(scope, cap))
            return "busy"
        try:
            return await self._read(scope, receive, send, source, head, now)
        finally:
            self.admission.release(size)

    def _busy(self, scope: Scope, cap: int) -> tuple[tuple[bytes, bytes], ...]:
        return (*RETRY_SOON, *unread_body(scope, cap))

    async def _read(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        source: Source,
        head: RawRequest,
        now: float,
    ) -> str:
        """The body, within its cap and the read deadline; then the rest of the check."""
        cap = self.cap(source.kind)
        body = await body_or_answer(scope, receive, send, cap, self.settings.ingress_read_timeout)
        if isinstance(body, str):
            return body
        request = head.with_body(body)
        if len(body) > THREAD_OVER:
            refusal = await asyncio.to_thread(check_body, source.kind, source.secrets, request, now)
        else:
            refusal = check_body(source.kind, source.secrets, request, now)
        if refusal is not None:
            return await self._refuse(scope, send, source, refusal, cap)
        return await self._take(send, source, request)

    async def _refuse(self, scope: Scope, send: Send, source: Source, why: str, cap: int) -> str:
        """The refusal logged (the reason, never the body) and counted, then 401."""
        log.warning("ingress: refused a request for source %s: %s", source.name, why)
        await self.storage.count(source.name, "refused")
        await answer(send, 401, b"not authenticated\n", headers=unread_body(scope, cap))
        return "refused"

    async def _take(self, send: Send, source: Source, request: RawRequest) -> str:
        """Normalize and store an authenticated callback's receipts; answer what became of
        them (200), or refuse the whole callback, storing nothing: 413 past `max_receipts`
        or 100 message ids in a reference, 429 past a quota, 503 when Redis cannot take it."""
        received_ms = int(time.time() * 1000)
        try:
            try:
                receipts = NORMALIZERS[source.kind](request, source.max_receipts)
            except TooManyReceipts as exc:
                return await self._reject(send, source, 413, str(exc), "too_many_receipts")
            except Exception as exc:  # anything unreadable is kept, never lost
                return await self._invalid(send, source, request, exc)
            plan = await self.storage.accept(source, receipts, received_ms)
        except TooManyIds as exc:
            return await self._reject(send, source, 413, f"a reference: {exc}", "too_many_ids")
        except QuotaExceeded as exc:
            await self._reject(send, source, 429, str(exc), retry_after=exc.retry_after)
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

    async def _reject(
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
        headers = () if retry_after is None else ((b"retry-after", str(retry_after).encode()),)
        await answer(send, status, f"{problem}\n".encode(), headers=headers)
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
        try:
            request = raw_request(scope, b"")
        except Malformed as exc:
            await answer(send, 400, f"{exc}\n".encode())
            return "malformed"
        challenge = whatsapp_handshake(source.secrets["verify_token"], request)
        if challenge is None:
            await answer(send, 403, b"verification failed\n")
            return "refused"
        await answer(send, 200, challenge.encode())
        return "handshake"
