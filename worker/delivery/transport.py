"""HTTP transport: one pooled keep-alive urllib3 manager, strict timeouts, a result value.

It never raises for an HTTP status and never follows redirects; `tasks.classify` decides what
an answer means. Each request has one total deadline (`worker.delivery.deadline`): a socket
timeout bounds each read, and a target that trickles its status line, headers or body a byte
at a time would hold a worker thread far past it (and past the visibility timeout).

Requests are sent with urllib3, the library under `requests`, directly: per request
`requests` spent about as much CPU again on machinery a fixed API target does not need
(settings merging, environment and proxy look-ups, cookie jars, hooks): measured with py-spy
under `make bench`, it was a third of a worker's CPU. Token endpoints are fetched through
`send` too, under the same deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from tasks.backoff import parse_retry_after
from tasks.classify import HttpResult
from tasks.outbound import OutboundRequest
from worker.delivery.deadline import WATCHDOG, attach, current_guard
from worker.observe.secrets import KNOWN
from worker.settings import get_settings

MAX_BODY = 64 * 1024  # enough for any vendor answer; more is garbage we do not keep
CONNECT_TIMEOUT = 5.0
USER_AGENT = "delivery-relay (urllib3)"

# One connection pool per target host (thread-safe), each keeping as many connections alive as
# the worker sends requests side by side (RELAY_HTTP_THREADS), and each URL's pool and path
# worked out once: a target's few endpoints are called thousands of times a second, and
# urllib3's PoolManager spent as much on finding the pool again as on the request.
_routes: dict[str, tuple[urllib3.HTTPConnectionPool, str]] = {}
_pools: dict[tuple[str, str, int | None], urllib3.HTTPConnectionPool] = {}
_routes_lock = threading.Lock()
_timeouts: dict[float, urllib3.Timeout] = {}


class _Watched:
    """What a connection tells the request's deadline guard: that it is the one in use, and
    its socket's descriptor (the watchdog shuts it down at the deadline)."""

    relay_fd = -1

    def _new_conn(self) -> Any:
        attach(self)
        sock = super()._new_conn()  # type: ignore[misc]
        self.relay_fd = sock.fileno()
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        attach(self)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def close(self) -> None:
        # Under the guard's lock: the watchdog never shuts down a descriptor being given back.
        guard = current_guard()
        if guard is None:
            self.relay_fd = -1
            super().close()  # type: ignore[misc]
            return
        with guard.lock:
            self.relay_fd = -1
            super().close()  # type: ignore[misc]


class _WatchedHTTP(_Watched, HTTPConnection):
    pass


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


def _route(url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
    """The connection pool and request path for `url`."""
    found = _routes.get(url)
    if found is None:
        with _routes_lock:
            parts = urllib3.util.parse_url(url)
            host_key = (parts.scheme or "http", parts.host or "", parts.port)
            pool = _pools.get(host_key)
            if pool is None:
                size = get_settings().http_threads
                pool = _pools[host_key] = urllib3.connection_from_url(
                    url, maxsize=size, block=False, retries=False
                )
                pool.ConnectionCls = _WatchedHTTPS if parts.scheme == "https" else _WatchedHTTP
            found = _routes[url] = (pool, parts.request_uri)
    return found


def _timeout(seconds: float) -> urllib3.Timeout:
    found = _timeouts.get(seconds)
    if found is None:
        found = _timeouts[seconds] = urllib3.Timeout(
            connect=min(CONNECT_TIMEOUT, seconds), read=seconds
        )
    return found


def send(
    request: OutboundRequest,
    auth_headers: Mapping[str, str],
    timeout: float,
    *,
    redact: bool = True,
) -> HttpResult:
    """Send one request and read its answer within `timeout` seconds in all (connecting,
    sending, the status line, headers and body); return what came back, or the network error,
    as an `HttpResult`. With `redact`, known secrets (and the credentials sent) are taken out
    of the body; a token endpoint's answer is read as it is (it *is* a secret)."""
    started = time.monotonic()
    headers = {"User-Agent": USER_AGENT, **request.headers, **auth_headers}
    guard = WATCHDOG.guard(started + timeout)
    response: urllib3.BaseHTTPResponse | None = None
    try:
        with guard:  # closed before the connection goes back to the pool
            pool, path = _route(request.url)
            response = pool.urlopen(
                request.method,
                path,
                body=request.body,
                headers=headers,
                timeout=_timeout(timeout),
                redirect=False,  # a 3xx is an answer for `classify`, never followed
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            body, complete = _read_body(response, guard.deadline)
    except HTTPError as exc:
        if response is not None:
            response.close()
        error = _failure(exc, guard.expired or time.monotonic() >= guard.deadline, timeout)
        cut = response is not None and not error.startswith("no complete")
        error = f"answer cut off: {error}" if cut else error
        return HttpResult(None, duration=time.monotonic() - started, network_error=error)
    if redact:
        body = KNOWN.redact_bytes(body, _credentials(auth_headers))
    return _answer(response, body, complete, started, timeout)


def _answer(
    response: urllib3.BaseHTTPResponse,
    body: bytes,
    complete: bool,
    started: float,
    timeout: float,
) -> HttpResult:
    """The answer whose body was read (whole, or up to MAX_BODY or the deadline)."""
    if complete:
        response.release_conn()
    else:
        response.close()  # the rest of the body is unread: the connection cannot be reused
        if time.monotonic() >= started + timeout:
            return HttpResult(
                None,
                body=body,
                duration=time.monotonic() - started,
                network_error=f"no complete answer within {_seconds(timeout)}s",
            )
    return HttpResult(
        response.status,
        body=body,
        retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()),
        duration=time.monotonic() - started,
    )


def _credentials(auth_headers: Mapping[str, str]) -> list[str]:
    """The credentials a request carried (a header's value, and its token without the scheme):
    a target that echoes them in its answer must not put them in a dead letter or in Flower."""
    values = list(auth_headers.values())
    return values + [v.partition(" ")[2] for v in values if " " in v]


def _read_body(response: urllib3.BaseHTTPResponse, deadline: float) -> tuple[bytes, bool]:
    """Read at most MAX_BODY bytes before `deadline`; say whether the body was complete.

    `read1` returns whatever one socket read brings, so a body trickling a byte at a time is
    checked against the deadline after every byte instead of blocking for a full chunk."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read1(16 * 1024)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY or time.monotonic() >= deadline:
            return b"".join(chunks)[:MAX_BODY], False


def _failure(exc: HTTPError, expired: bool, timeout: float) -> str:
    if expired or isinstance(exc, ReadTimeoutError):
        return f"no complete answer within {_seconds(timeout)}s"
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    if isinstance(exc, NewConnectionError | ProtocolError):
        cause = exc.__cause__ or (exc.args[1] if len(exc.args) > 1 else exc)
        return f"connection failed: {type(cause).__name__}"
    if isinstance(exc, ConnectTimeoutError):
        return "connect timeout"
    return type(exc).__name__


def _seconds(value: float) -> str:
    return f"{round(value, 2):g}"
