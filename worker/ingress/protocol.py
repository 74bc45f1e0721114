"""uvicorn's httptools protocol with the bounds uvicorn does not have: a deadline for the whole
request (a new connection or a request's first byte starts it; headers and body must be in
before it passes), a cap on the request's line and headers, a connection bound by default;
and, after an answer given before the body was read, the body's bytes let go at once and the
keep-alive timer armed again.

uvicorn keeps a connection that sends nothing, half a header or half a body open for ever (it
has no header timeout, and its keep-alive timer is disarmed by any byte). Run it with this
class: `uvicorn --http worker.ingress.protocol:GuardedHttp ...` (`relay ingress` does). It
leans on uvicorn's protocol internals (the pinned 0.54.0): `tests/ingress/test_protocol.py`
and the edge suites say whether a new uvicorn still fits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from worker.ingress.http import GUARDED
from worker.observe.metrics import INGRESS_REQUESTS
from worker.settings import get_settings

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class HeadTooLarge(Exception):
    """Raised inside the parser: the request's line and headers are over their cap."""


class GuardedHttp(HttpToolsProtocol):
    """One connection: `HttpToolsProtocol` plus the read deadline and the head's cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.read_timeout = settings.ingress_read_timeout
        self.max_head = settings.ingress_max_header_bytes
        if self.limit_concurrency is None:  # uvicorn's --limit-concurrency wins when given
            self.limit_concurrency = settings.ingress_max_connections
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # reading a request's line and headers (or waiting for them)
        self._head_bytes = 0  # raw bytes received while in the head
        self._head_over = False

    # the deadline ---------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        """The request did not arrive whole in time: 408 (unless an answer is already under
        way, or nothing at all came) and the connection closed; the app, if it waits for the
        body, learns the client is gone."""
        self._deadline = None
        if self.transport.is_closing():
            return
        INGRESS_REQUESTS.labels("-", "read_timeout").inc()
        cycle = self.cycle
        if self._in_head or cycle is None:  # half a head gets its 408; silence gets none
            speak = self._in_head and self._head_bytes > 0
        else:  # in the body: the 408, unless the app answered already
            speak = not cycle.response_started
            if not cycle.response_complete:
                cycle.disconnected = True  # its send() writes nothing from now on
                cycle.message_event.set()
        if speak:
            self._refuse(408, b"the request did not arrive in time\n")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: bytes) -> None:
        """Answer `status` on the transport itself and close the connection."""
        head = b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])
        head += b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        head += b"content-length: %d\r\n\r\n" % len(message)
        self.transport.write(head + message)
        self.transport.close()

    # uvicorn's protocol, extended -----------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is cut off too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._arm()  # a request's first bytes start its deadline
            self._head_bytes += len(data)
        super().data_received(data)
        # Still in the head after all of it: every byte was head. httptools gathers one long
        # header inside itself, so this count, not the parsed size, catches it.
        if self._in_head and self._head_bytes > self.max_head and not self.transport.is_closing():
            INGRESS_REQUESTS.labels("-", "headers_too_large").inc()
            self._refuse(431, b"the request's headers are too large\n")

    def on_message_begin(self) -> None:
        self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head:
            self._head_over = True
            raise HeadTooLarge  # the parser stops; uvicorn answers through send_400_response
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            INGRESS_REQUESTS.labels("-", "busy").inc()  # uvicorn answers 503 itself
        self.scope[GUARDED] = self.read_timeout  # type: ignore[literal-required]
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_over:
            INGRESS_REQUESTS.labels("-", "headers_too_large").inc()
            self._refuse(431, b"the request's headers are too large\n")
            return
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        # Answered before its body was read (refused, or turned away): what uvicorn gathered
        # of the body meanwhile is nobody's; let it go now, not when the connection ends. Only
        # the request just answered (a pipelined one after it has not been answered yet).
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body and cycle.body:
            cycle.body = bytearray()
        super().on_response_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()
        # Answered before its body was read, the request's last bytes came after the answer
        # and disarmed uvicorn's keep-alive timer; arm it again, or the connection idles on.
        answered_early = self.cycle is not None and self.cycle.response_complete
        idle = self.timeout_keep_alive_task is None and not self.transport.is_closing()
        if answered_early and idle:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
