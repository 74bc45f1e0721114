"""The sandbox HTTP server: both vendor look-alikes on one port, recording and misbehaving."""

from __future__ import annotations

import contextlib
import http
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from worker.dev.sandbox import medallia, salesforce, wire
from worker.dev.sandbox.faults import Fault, FaultBook, RequestLog

logger = logging.getLogger(__name__)

# Path patterns of the vendor endpoints, each with its (api, endpoint) name.
ROUTES: dict[re.Pattern[str], tuple[str, str]] = {
    re.compile(r"/salesforce/api/v1/interactions"): ("salesforce", "interactions"),
    re.compile(r"/salesforce/api/v1/acknowledgement"): ("salesforce", "acknowledgement"),
    re.compile(r"/medallia/apis/v0/channels/[^/]+/messages"): ("medallia", "messages"),
}
PATHS = [
    "POST /salesforce/api/v1/interactions",
    "POST /salesforce/api/v1/acknowledgement",
    "POST /medallia/apis/v0/channels/{channel_guid}/messages",
    "GET /_sandbox/health",
    "GET|POST|DELETE /_sandbox/faults",
    "GET|DELETE /_sandbox/requests",
]
_SECRET_HEADERS = frozenset({"authorization", "x-hub-signature"})
# Status of an accepted request, per endpoint, as the real APIs answer.
_SUCCESS = {"interactions": 202, "acknowledgement": 200, "messages": 200}


Check = Callable[..., tuple[Any, list[str], str | None]]
Answer = Callable[[str, int, Any, str | None], tuple[str, bytes]]
# Each API's checker and answer wording, picked by name rather than by an if/elif chain.
VENDORS: dict[str, tuple[Check, Answer]] = {
    "salesforce": (salesforce.check_request, salesforce.answer),
    "medallia": (medallia.check_request, medallia.answer),
}


class Sandbox:
    """Local look-alikes of the Salesforce and Medallia APIs for tests and `relay dev`.

    Every request is checked strictly, answered like the vendor would, and recorded. Faults make
    the next matching requests fail, slow down, ask for a retry, redirect, lose their connection,
    arrive truncated or trickle in forever.
    """

    def __init__(
        self,
        *,
        tokens: dict[str, str] | None = None,
        hub_secret: str | None = None,
        latency: float = 0.0,
    ) -> None:
        unknown = set(tokens or {}) - {"salesforce", "medallia"}
        if unknown:
            raise ValueError(f"tokens may only be given for salesforce and medallia: {unknown}")
        if latency < 0:
            raise ValueError(f"latency must be 0 or more seconds, got {latency}")
        self.tokens = dict(tokens or {})
        self.hub_secret = hub_secret
        self.latency = latency
        self.faults = FaultBook()
        self.log = RequestLog()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread and give the base URL (port 0 picks a free port)."""
        if self._server is not None:
            raise RuntimeError(f"the sandbox is already serving at {self.url}")
        server = self._bind(host, port)
        self._thread = threading.Thread(
            target=server.serve_forever, name="relay-sandbox", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving, close open connections and wait for the serving thread to end."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join()
            self._close()

    def serve_forever(self, host: str, port: int) -> None:
        """Serve in the calling thread until Ctrl-C or `stop()` from another thread."""
        server = self._bind(host, port)
        logger.info("relay sandbox serving at %s", self.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            logger.info("relay sandbox stopped")
        finally:
            self._close()

    @property
    def url(self) -> str:
        """Give the base URL; a target's base_url is this plus /salesforce or /medallia."""
        if self._server is None:
            raise RuntimeError("the sandbox is not serving")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_fault(self, fault: Fault) -> None:
        """Make matching requests misbehave; earlier faults win."""
        self.faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every fault, so that requests are answered normally again."""
        self.faults.clear()

    def requests(self) -> list[dict[str, Any]]:
        """Give copies of the recorded requests, oldest first."""
        return self.log.copies()

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self.log.clear()

    def _bind(self, host: str, port: int) -> _Server:
        self._server = _Server((host, port), self)
        return self._server

    def _close(self) -> None:
        server, self._server, self._thread = self._server, None, None
        if server is not None:
            server.stopping.set()
            server.close_connections()
            server.server_close()


class _Server(ThreadingHTTPServer):
    """The threading server, tracking open connections so that `stop()` can close them."""

    daemon_threads = True
    request_queue_size = 1024  # a bundle's connections come at once; 5 made them wait seconds

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        # Set when the sandbox stops, so that answers trickling forever end with it.
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake idle keep-alive connections so that their threads end with the server."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests: vendor endpoints, control endpoints, or 404."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the relay's pooled session expects
    server: _Server
    # Idle keep-alive connections are closed after this many seconds, freeing their thread.
    timeout = 60

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        # The relay always sends a Content-Length; anything else is refused rather than guessed.
        if "Transfer-Encoding" in self.headers or not length.isdigit():
            self.close_connection = True
            self._send(411, {"error": "send a valid Content-Length; chunked bodies are refused"})
            return
        body = self.rfile.read(int(length))
        path = urlsplit(self.path).path
        if path.startswith("/_sandbox/"):
            self._control(path, body)
            return
        api, endpoint = next(
            (route for pattern, route in ROUTES.items() if pattern.fullmatch(path)), ("", path)
        )
        if not api or self.command != "POST":
            self._refuse(api or "unknown", endpoint, path)
        else:
            self._vendor(api, endpoint, body)

    def _vendor(self, api: str, endpoint: str, body: bytes) -> None:
        sandbox, received = self.server.sandbox, time.time()
        fault = sandbox.faults.take(api, body)
        check, answer = VENDORS[api]
        token, secret = sandbox.tokens.get(api), sandbox.hub_secret
        data, problems, auth = check(endpoint, self.headers, body, token, secret)
        record = self._record(api, endpoint, data, problems, received, fault is not None)
        time.sleep(sandbox.latency + (fault.delay if fault else 0.0))
        if fault is not None and fault.drop:
            sandbox.log.add(record)
            wire.drop(self)
            return
        status = 401 if auth else 400 if problems else _SUCCESS[endpoint]
        status = fault.status if fault and fault.status is not None else status
        message = auth if status == 401 else "; ".join(problems) if status == 400 else None
        content_type, payload = answer(endpoint, status, data, message)
        sandbox.log.add(record | {"status": status})
        if fault is None:
            wire.send(self, status, content_type, payload, {})
        else:
            self._spoiled(fault, status, content_type, payload)

    def _spoiled(self, fault: Fault, status: int, content_type: str, payload: bytes) -> None:
        """Answer as `fault` says: another body, a redirect, truncated or trickling forever."""
        extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.redirect is not None:
            extra["Location"] = fault.redirect
            payload, content_type = wire.redirect_page(fault.redirect), "text/html"
        payload = payload if fault.body is None else fault.body.encode()
        content_type = fault.content_type or content_type
        if fault.trickle:
            stop = self.server.stopping
            wire.trickle(self, status, content_type, payload, extra, every=fault.trickle, stop=stop)
        elif fault.truncate:
            wire.truncated(self, status, content_type, payload, extra)
        else:
            wire.send(self, status, content_type, payload, extra)

    def _refuse(self, api: str, endpoint: str, path: str) -> None:
        """Answer a request to an unknown path (404) or with a method other than POST (405)."""
        status, problem = (404, f"no endpoint at {path}") if api == "unknown" else (405, "")
        problem = problem or f"{self.command} is not allowed at {path}; use POST"
        record = self._record(api, endpoint, None, [problem], time.time(), False)
        time.sleep(self.server.sandbox.latency)
        self.server.sandbox.log.add(record | {"status": status})
        body = {"error": http.HTTPStatus(status).phrase, "message": problem, "paths": PATHS}
        self._send(status, body, {"Allow": "POST"} if status == 405 else None)

    def _record(
        self, api: str, endpoint: str, data: Any, problems: list[str], received: float, fault: bool
    ) -> dict[str, Any]:
        headers = {
            name: "***" if name.lower() in _SECRET_HEADERS else value
            for name, value in self.headers.items()
        }
        return {
            **{"api": api, "endpoint": endpoint, "path": self.path, "headers": headers},
            **{"json": data, "valid": not problems, "problems": problems},
            **{"status": 0, "fault": fault, "time": received},
        }

    def _control(self, path: str, body: bytes) -> None:
        sandbox = self.server.sandbox
        actions: dict[tuple[str, str], Callable[[], tuple[int, Any]]] = {
            ("GET", "/_sandbox/health"): lambda: (200, {"ok": True}),
            ("GET", "/_sandbox/requests"): lambda: (200, sandbox.requests()),
            ("DELETE", "/_sandbox/requests"): lambda: (200, {"cleared": sandbox.log.clear()}),
            ("GET", "/_sandbox/faults"): lambda: (200, sandbox.faults.snapshot()),
            ("DELETE", "/_sandbox/faults"): lambda: (200, {"cleared": sandbox.faults.clear()}),
            ("POST", "/_sandbox/faults"): lambda: self._add_fault(body),
        }
        missing = (404, {"error": f"no control endpoint {self.command} {path}", "paths": PATHS})
        self._send(*actions.get((self.command, path), lambda: missing)())

    def _add_fault(self, body: bytes) -> tuple[int, Any]:
        try:
            fault = Fault.from_json(json.loads(body or b"null"))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            return 400, {"error": str(exc)}
        self.server.sandbox.add_fault(fault)
        return 201, {"added": fault.to_json()}

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        wire.send(self, status, "application/json", json.dumps(body).encode(), headers or {})
