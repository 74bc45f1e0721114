"""POST /v1/receipts/{source}: a provider's callback, authenticated over the raw bytes before
anything is read, normalized, and stored in Redis before it is answered 200."""

from __future__ import annotations

import logging
import time

from tasks.upstream import NORMALIZERS, Unreadable
from tasks.upstream.request import RawRequest
from tasks.upstream.signatures import verify, whatsapp_handshake
from worker.ingress.http import (
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
from worker.sources import Source

log = logging.getLogger("relay.ingress")


class Receipts:
    """Takes callbacks for the configured sources; returns the outcome to count."""

    def __init__(self, sources: dict[str, Source], storage: Storage, max_bytes: int) -> None:
        self.sources = sources
        self.storage = storage
        self.max_bytes = max_bytes

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
        received_ms = int(time.time() * 1000)
        try:
            try:
                receipts = NORMALIZERS[source.kind](request)
            except Exception as exc:  # anything unreadable is kept, never lost
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
            plan = await self.storage.accept(source, receipts, received_ms)
        except STORE_ERRORS as exc:
            log.warning("ingress: Redis cannot take source %s's receipts: %s", source.name, exc)
            await answer(send, 503, b"cannot store receipts now; try again\n")
            return "unavailable"
        counts = {
            "accepted": len(plan.events),
            "waiting": len(plan.waiting),
            "ignored": plan.ignored,
        }
        for outcome, n in counts.items():
            if n:
                INGRESS_RECEIPTS.labels(source.name, outcome).inc(n)
        await answer_json(send, 200, counts)
        return "accepted" if plan.events or plan.waiting else "ignored"

    async def _handshake(self, scope: Scope, send: Send, source: Source) -> str:
        """Meta's subscription handshake: echo hub.challenge when mode and token match."""
        challenge = whatsapp_handshake(source.secrets["verify_token"], raw_request(scope, b""))
        if challenge is None:
            await answer(send, 403, b"verification failed\n")
            return "refused"
        await answer(send, 200, challenge.encode())
        return "handshake"
