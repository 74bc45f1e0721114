"""HTTP transport: a pooled keep-alive session per thread, strict timeouts, a result value.

It never raises for an HTTP status and never follows redirects; `tasks.classify` decides what
an answer means. The body is read against a total deadline, because a read timeout alone lets a
target that trickles bytes forever hold a worker thread forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from functools import lru_cache

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers

from tasks.backoff import parse_retry_after
from tasks.classify import HttpResult
from tasks.outbound import OutboundRequest

_DEFAULT_HEADERS = default_headers()  # what a Session would add: User-Agent, Accept, ...
MAX_BODY = 64 * 1024  # enough for any vendor answer; more is garbage we do not keep
CONNECT_TIMEOUT = 5.0
_local = threading.local()


def adapter() -> HTTPAdapter:
    """This thread's connection pool (requests' adapters are not thread-safe; pools are reused).

    Requests go straight to the adapter, which is what `Session.send` ends in: the session's
    per-call merging of settings, environment (proxy and netrc look-ups), cookies and hooks was
    a third of a worker's CPU and none of it applies to a fixed API target."""
    current: HTTPAdapter | None = getattr(_local, "adapter", None)
    if current is None:
        current = _local.adapter = HTTPAdapter(pool_connections=8, pool_maxsize=8, max_retries=0)
    return current


@lru_cache(maxsize=256)
def _prepared_url(url: str) -> str:
    """requests' URL preparation (IDNA, quoting), once per distinct target URL."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return str(prepared.url)


def _prepare(request: OutboundRequest, auth_headers: Mapping[str, str]) -> requests.PreparedRequest:
    prepared = requests.PreparedRequest()
    prepared.method = request.method.upper()
    prepared.url = _prepared_url(request.url)
    headers = CaseInsensitiveDict(_DEFAULT_HEADERS)
    headers.update(request.headers)
    headers.update(auth_headers)
    headers["Content-Length"] = str(len(request.body))
    prepared.headers = headers
    prepared.body = request.body
    return prepared


def send(request: OutboundRequest, auth_headers: Mapping[str, str], timeout: float) -> HttpResult:
    """Send one request; return what came back, or the network error, as an `HttpResult`."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        # Never redirected: the adapter answers with the 3xx itself, for `classify`.
        response = adapter().send(
            _prepare(request, auth_headers),
            stream=True,
            timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
            verify=True,
            cert=None,
            proxies={},
        )
    except requests.RequestException as exc:
        return HttpResult(
            None, duration=time.monotonic() - started, network_error=_describe(exc, timeout)
        )
    try:
        body, complete = _read_body(response, deadline)
    except requests.RequestException as exc:
        response.close()
        return HttpResult(
            None,
            duration=time.monotonic() - started,
            network_error=f"answer cut off: {_describe(exc, timeout)}",
        )
    if not complete:
        response.close()  # the rest of the body is unread: the connection cannot be reused
        if time.monotonic() >= deadline:
            return HttpResult(
                None,
                body=body,
                duration=time.monotonic() - started,
                network_error=f"answer body not finished within {timeout:g}s",
            )
    return HttpResult(
        response.status_code,
        body=body,
        retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()),
        duration=time.monotonic() - started,
    )


def _read_body(response: requests.Response, deadline: float) -> tuple[bytes, bool]:
    """Read at most MAX_BODY bytes before `deadline`; say whether the body was complete.

    `read1` returns whatever one socket read brings, so a body trickling a byte at a time is
    checked against the deadline after every byte instead of blocking for a full chunk."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.raw.read1(16 * 1024, decode_content=True)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY or time.monotonic() >= deadline:
            return b"".join(chunks)[:MAX_BODY], False


def _describe(exc: requests.RequestException, timeout: float) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g}s (read timeout)"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed: {type(exc.__cause__ or exc).__name__}"
    return type(exc).__name__
