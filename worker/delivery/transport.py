"""HTTP transport: one pooled keep-alive urllib3 manager, strict timeouts, a result value.

It never raises for an HTTP status and never follows redirects; `tasks.classify` decides what
an answer means. The body is read against a total deadline, because a read timeout alone lets a
target that trickles bytes forever hold a worker thread forever.

Requests are sent with urllib3, the library under `requests`, directly: per request
`requests` spent about as much CPU again on machinery a fixed API target does not need
(settings merging, environment and proxy look-ups, cookie jars, hooks): measured with py-spy
under `make bench`, it was a third of a worker's CPU. Token endpoints still use `requests`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import urllib3
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
            found = _routes[url] = (pool, parts.request_uri)
    return found


def _timeout(seconds: float) -> urllib3.Timeout:
    found = _timeouts.get(seconds)
    if found is None:
        found = _timeouts[seconds] = urllib3.Timeout(
            connect=min(CONNECT_TIMEOUT, seconds), read=seconds
        )
    return found


def send(request: OutboundRequest, auth_headers: Mapping[str, str], timeout: float) -> HttpResult:
    """Send one request; return what came back, or the network error, as an `HttpResult`."""
    started = time.monotonic()
    headers = {"User-Agent": USER_AGENT, **request.headers, **auth_headers}
    try:
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
    except HTTPError as exc:
        return HttpResult(
            None, duration=time.monotonic() - started, network_error=_describe(exc, timeout)
        )
    return _answer(response, started, timeout)


def _answer(response: urllib3.BaseHTTPResponse, started: float, timeout: float) -> HttpResult:
    """The answer whose headers arrived: its body, read against the request's total deadline."""
    deadline = started + timeout
    try:
        body, complete = _read_body(response, deadline)
    except HTTPError as exc:
        response.close()
        return HttpResult(
            None,
            duration=time.monotonic() - started,
            network_error=f"answer cut off: {_describe(exc, timeout)}",
        )
    if complete:
        response.release_conn()
    else:
        response.close()  # the rest of the body is unread: the connection cannot be reused
        if time.monotonic() >= deadline:
            return HttpResult(
                None,
                body=body,
                duration=time.monotonic() - started,
                network_error=f"answer body not finished within {timeout:g}s",
            )
    return HttpResult(
        response.status,
        body=body,
        retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()),
        duration=time.monotonic() - started,
    )


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


def _describe(exc: HTTPError, timeout: float) -> str:
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    if isinstance(exc, NewConnectionError | ProtocolError):
        cause = exc.__cause__ or (exc.args[1] if len(exc.args) > 1 else exc)
        return f"connection failed: {type(cause).__name__}"
    if isinstance(exc, ConnectTimeoutError):
        return "connect timeout"
    if isinstance(exc, ReadTimeoutError):
        return f"no answer within {timeout:g}s (read timeout)"
    return type(exc).__name__
