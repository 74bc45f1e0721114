"""HTTP transport: requests run on the process's libcurl loop (`worker.delivery.curl`), strict
limits, a result value.

It never raises for an HTTP status and never follows redirects; `tasks.classify` decides what
an answer means. Each request has one total deadline, `timeout` seconds for connecting,
sending, the status line, the headers and the body together (libcurl's CURLOPT_TIMEOUT_MS): a
target that trickles its answer a byte at a time is cut when the time is up, not when one read
waits too long. Only http and https, no proxy from the environment, no redirect, TLS peers
verified against Python's default trust store, at most MAX_BODY bytes of an answer kept.
Token endpoints are fetched through `send` too, under the same deadline.

`start` hands a request over and returns at once (the answer comes to a callback on the loop's
thread); `send` waits for it. Per request, this costs a tenth of what urllib3 from a pool of
threads did (bench/README.md, "The HTTP client").
"""

from __future__ import annotations

import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pycurl

from tasks.classify import HttpResult
from tasks.outbound import OutboundRequest
from worker.delivery.curl import NOT_STARTED, get_loop
from worker.observe.secrets import KNOWN
from worker.settings import get_settings

MAX_BODY = 64 * 1024  # enough for any vendor answer; more is garbage we do not keep
CONNECT_TIMEOUT = 5.0
USER_AGENT = "delivery-relay (libcurl)"
_TLS_ERRORS = frozenset((35, 58, 59, 60, 77, 80, 83))  # libcurl's TLS failures, by number
_UNSAFE = re.compile("[\r\n\0]")
_TRUST = ssl.get_default_verify_paths()
# What libcurl would add on its own, taken off unless the request sets it: only the headers a
# request names (and Host, Content-Length, User-Agent) go out, as with urllib3 before.
_NOT_ADDED = {"accept": "Accept:", "content-type": "Content-Type:", "expect": "Expect:"}

NOT_SENT = HttpResult(None, network_error="not sent: task budget spent")
"""What `start` answers for a request whose `start_by` passed before it could be sent."""
Answered = Callable[[HttpResult], None]
_idle: list[Any] = []  # easy handles to reuse (their options are all set again per request)
_local = threading.local()  # each thread's own easy handle, for `send`


class _Exchange:
    """One request on the loop: its easy handle, what came back, and whom to tell."""

    __slots__ = (
        "answered",
        "chunks",
        "credentials",
        "easy",
        "pooled",
        "redact",
        "size",
        "start_by",
        "started",
        "timeout",
    )

    def __init__(self, easy: Any, timeout: float, answered: Answered) -> None:
        self.easy, self.timeout, self.answered = easy, timeout, answered
        self.start_by: float | None = None
        self.pooled = True
        self.chunks: list[bytes] = []
        self.size = 0
        self.started = time.monotonic()
        self.redact = True
        self.credentials: tuple[str, ...] = ()

    def write(self, chunk: bytes) -> int | None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        return 0 if self.size > MAX_BODY else None  # 0: libcurl stops reading (a write error)

    def finish(self, error: int, message: str) -> None:
        easy = self.easy
        if error == NOT_STARTED:
            _idle.append(easy)  # (only the loop's transfers have a turn to wait for)
            self.answered(NOT_SENT)
            return
        status = int(easy.getinfo(pycurl.RESPONSE_CODE)) or None
        os_errno = int(easy.getinfo(pycurl.OS_ERRNO))
        duration = time.monotonic() - self.started
        # Retry-After as libcurl read it (seconds, or an HTTP date made seconds from now; 0
        # when absent, or past: the same wait as none).
        retry_after = float(easy.getinfo(pycurl.RETRY_AFTER)) or None
        easy.setopt(pycurl.WRITEFUNCTION, _drop)  # no reference back to this exchange
        if self.pooled:
            _idle.append(easy)
        body = b"".join(self.chunks)[:MAX_BODY]
        if self.redact and body:
            body = KNOWN.redact_bytes(body, self.credentials)
        if error and not (error == pycurl.E_WRITE_ERROR and self.size > MAX_BODY):
            why = _failure(error, os_errno, duration, self.timeout)
            cut = status is not None and not why.startswith("no complete")
            why = f"answer cut off: {why}" if cut else why
            self.answered(HttpResult(None, body=body, duration=duration, network_error=why))
            return
        self.answered(HttpResult(status, body=body, retry_after=retry_after, duration=duration))


def _drop(_: bytes) -> None:
    return None


def start(
    request: OutboundRequest,
    auth_headers: Mapping[str, str],
    timeout: float,
    answered: Answered,
    *,
    redact: bool = True,
    start_by: float | None = None,
) -> None:
    """Send one request; `answered` gets what came back (or the network error) as an
    `HttpResult`, on the loop's thread, once, within `timeout` seconds in all once sent. A
    request waits while RELAY_HTTP_THREADS others are in flight; one still waiting at
    `start_by` (time.monotonic()) is not sent: its answer is NOT_SENT. With `redact`, known
    secrets (and the credentials sent) are taken out of the body; a token endpoint's answer is
    read as it is (it *is* a secret)."""
    exchange = _prepared(request, auth_headers, timeout, answered, redact, None)
    if exchange is not None:
        exchange.start_by = start_by
        get_loop(get_settings().http_threads).submit(exchange)


def send(
    request: OutboundRequest,
    auth_headers: Mapping[str, str],
    timeout: float,
    *,
    redact: bool = True,
) -> HttpResult:
    """Send one request on this thread and wait for its answer (the rules of `start`; no
    turn to wait for). Each thread keeps a connection per target host alive for it: a lone
    request spares the hand-over to the loop's thread and back, which at moderate rates cost
    as much as the request."""
    got: list[HttpResult] = []
    exchange = _prepared(request, auth_headers, timeout, got.append, redact, _own_easy())
    if exchange is None:
        return got[0]
    error, message = 0, ""
    try:
        exchange.easy.perform()
    except pycurl.error as exc:
        error, message = int(exc.args[0]), str(exc.args[1])
    exchange.finish(error, message)
    return got[0]


def _prepared(
    request: OutboundRequest,
    auth_headers: Mapping[str, str],
    timeout: float,
    answered: Answered,
    redact: bool,
    easy: Any,
) -> _Exchange | None:
    """The request on an easy handle (`easy`, or one from the shared pool when None), or None
    when it cannot be sent (`answered` was told why)."""
    headers = _header_lines(request.headers, auth_headers)
    if headers is None:
        why = "internal error: a header holds a line break or NUL"
        answered(HttpResult(None, network_error=why))
        return None
    pooled = easy is None
    if easy is None:
        easy = _idle.pop() if _idle else _new_easy()
    exchange = _Exchange(easy, timeout, answered)
    exchange.redact, exchange.pooled = redact, pooled
    if redact:
        exchange.credentials = _credentials(auth_headers)
    _configure(easy, request, headers, timeout)
    # No header callback: each one takes the GIL again, eight times an answer; libcurl keeps
    # the status and Retry-After for `finish`.
    easy.setopt(pycurl.WRITEFUNCTION, exchange.write)
    return exchange


def _own_easy() -> Any:
    """This thread's easy handle (a forked child makes its own: the parent's connections are
    not its to use)."""
    found: tuple[int, Any] | None = getattr(_local, "easy", None)
    if found is None or found[0] != os.getpid():
        found = _local.easy = (os.getpid(), _new_easy())
    return found[1]


def _configure(easy: Any, request: OutboundRequest, headers: list[str], timeout: float) -> None:
    easy.setopt(pycurl.URL, request.url)
    easy.setopt(pycurl.HTTPHEADER, headers)
    easy.setopt(pycurl.TIMEOUT_MS, max(1, round(timeout * 1000)))
    easy.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, round(min(CONNECT_TIMEOUT, timeout) * 1000)))
    if request.method == "GET":
        easy.setopt(pycurl.HTTPGET, 1)
    else:
        easy.setopt(pycurl.POSTFIELDS, request.body)  # pycurl keeps the bytes alive meanwhile
        if request.method == "POST":
            easy.unsetopt(pycurl.CUSTOMREQUEST)
        else:
            easy.setopt(pycurl.CUSTOMREQUEST, request.method)


def _new_easy() -> Any:
    easy = pycurl.Curl()
    easy.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    easy.setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTPS)
    easy.setopt(pycurl.FOLLOWLOCATION, 0)  # a 3xx is an answer for `classify`, never followed
    easy.setopt(pycurl.PROXY, "")  # never a proxy from the environment (it would see tokens)
    easy.setopt(pycurl.NOSIGNAL, 1)
    easy.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    easy.setopt(pycurl.USERAGENT, USER_AGENT)
    easy.setopt(pycurl.SSL_VERIFYPEER, 1)
    easy.setopt(pycurl.SSL_VERIFYHOST, 2)
    if _TRUST.cafile:
        easy.setopt(pycurl.CAINFO, _TRUST.cafile)
    if _TRUST.capath:
        easy.setopt(pycurl.CAPATH, _TRUST.capath)
    return easy


def _header_lines(*blocks: Mapping[str, str]) -> list[str] | None:
    """The request's header lines (None if one could smuggle another in), and what libcurl
    must not add on its own."""
    lines = [f"{name}: {value}" for block in blocks for name, value in block.items()]
    if _UNSAFE.search("".join(lines)):
        return None
    named = {name.lower() for block in blocks for name in block}
    lines += [off for name, off in _NOT_ADDED.items() if name not in named]
    return lines


def _credentials(auth_headers: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials a request carried (a header's value, and its token without the scheme):
    a target that echoes them in its answer must not put them in a dead letter or in Flower."""
    values = tuple(auth_headers.values())
    return values + tuple(v.partition(" ")[2] for v in values if " " in v)


def _failure(error: int, os_errno: int, duration: float, timeout: float) -> str:
    """What a libcurl error means, in the words the relay used with urllib3."""
    if error == pycurl.E_OPERATION_TIMEDOUT:
        if duration < min(CONNECT_TIMEOUT, timeout) + 0.05 <= timeout:
            return "connect timeout"
        return f"no complete answer within {_seconds(timeout)}s"
    if error == pycurl.E_COULDNT_RESOLVE_HOST:
        return "connection failed: gaierror"
    if error == pycurl.E_GOT_NOTHING:
        return "connection failed: RemoteDisconnected"
    if error == pycurl.E_PARTIAL_FILE:
        return "connection failed: IncompleteRead"
    if error in _TLS_ERRORS:  # a handshake or a certificate that did not verify
        return "connection failed: SSLError"
    if os_errno:
        return f"connection failed: {type(OSError(os_errno, '')).__name__}"
    return f"connection failed: curl error {error}"


def _seconds(value: float) -> str:
    return f"{round(value, 2):g}"
