"""A local target for fault tests that must know *when* each answer left: Salesforce and
Medallia look-alike endpoints that answer by rules set per round and record, per request, the
(message id, status) pairs it carried, when it came in and when its answer was written.

Rules of a round (`arm`): the first `refuse` requests get 503 at once; the others are held
until `hold` of them wait (or `hold_timeout` passes) and are then answered together, like a
target that stalls and recovers, each after `delay`. `on_release` runs once, in the
thread that releases the held requests, just before they are answered (a test pauses Redis
there, so that the answers arrive while the relay's bookkeeping cannot be written).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SF_OK = (
    b'{"conversationIdentifier":"c0a8e9f2-0000-4000-8000-00000000c0de",'
    b'"id":"5f0c9a3e-0000-4000-8000-000000000202","workItemIds":[],"success":true}'
)
_FAILED = re.compile(rb'"failedConversationEntryIdentifier"\s*:\s*"([^"]+)"')
_ACKED = re.compile(rb'"acknowledgedConversationEntryIdentifier"\s*:\s*"([^"]+)"')


@dataclass(frozen=True, slots=True)
class Answer:
    """One request as the target saw it: what it carried, what it was answered, and when."""

    api: str
    status: int
    posted: tuple[tuple[str, str], ...]
    """(message id, status) pairs the request carried."""
    received: float
    answered: float


@dataclass
class _Round:
    refuse: int = 0
    hold: int = 0
    delay: float = 0.0
    hold_timeout: float = 5.0
    on_release: Callable[[], None] | None = None
    seen: int = 0
    waiting: int = 0
    released: bool = False
    done: list[Answer] = field(default_factory=list)


def carried(api: str, body: bytes) -> tuple[tuple[str, str], ...]:
    """The (message id, status) pairs a request body carries."""
    if api == "salesforce":
        failed = [(m.decode(), "failed") for m in _FAILED.findall(body)]
        return tuple(failed + [(m.decode(), "delivered") for m in _ACKED.findall(body)])
    document = json.loads(body)
    return tuple(
        (mid, item["delivery"]["status"])
        for entry in document["entry"]
        for item in entry["messaging"]
        for mid in item["delivery"]["mids"]
    )


class GateTarget:
    """Serves on 127.0.0.1 (a free port) until `stop`."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._round = _Round()
        self._answers: list[Answer] = []
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GateTarget:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._round.released = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def arm(
        self,
        refuse: int = 0,
        hold: int = 0,
        delay: float = 0.0,
        hold_timeout: float = 5.0,
        on_release: Callable[[], None] | None = None,
    ) -> None:
        """Start a round with these rules (held requests of the last round are let go)."""
        with self._lock:
            self._round.released = True
            self._lock.notify_all()
            self._round = _Round(refuse, hold, delay, hold_timeout, on_release)

    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def received(self) -> int:
        """Requests that came in this round (answered or not)."""
        with self._lock:
            return self._round.seen

    def accepted(self) -> Counter[str]:
        """How many 2xx answers each message id got."""
        return Counter(m for a in self.answers() if 200 <= a.status < 300 for m, _ in a.posted)

    def answer(self, api: str, body: bytes) -> tuple[int, bytes, Callable[[float], None]]:
        """Decide the answer to one request (waiting as the round's rules say); and a
        callback that records it once it was written."""
        received = time.time()
        with self._lock:
            rules = self._round
            number, rules.seen = rules.seen, rules.seen + 1
        if number < rules.refuse:
            status, payload = 503, b'{"message":"overloaded"}'
        else:
            status, payload = (202, SF_OK) if api == "salesforce" else (200, b'{"ok":true}')
            self._wait_for_company(rules)
            time.sleep(rules.delay)
        posted = carried(api, body)

        def record(answered: float) -> None:
            with self._lock:
                self._answers.append(Answer(api, status, posted, received, answered))

        return status, payload, record

    def _wait_for_company(self, rules: _Round) -> None:
        if not rules.hold:
            return
        release: Callable[[], None] | None = None
        with self._lock:
            rules.waiting += 1
            if rules.waiting >= rules.hold and not rules.released:
                rules.released, release = True, rules.on_release or (lambda: None)
            deadline = time.monotonic() + rules.hold_timeout
            while not rules.released and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            rules.released = True
        if release is not None:
            release()
        with self._lock:
            self._lock.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a bundle's 200 connections come at once


def _handler(target: GateTarget) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api = "salesforce" if self.path.startswith("/salesforce/") else "medallia"
            status, payload, record = target.answer(api, body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except OSError:  # the relay gave up on it (a timeout): never read, not accepted
                self.close_connection = True
                return
            record(time.time())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
