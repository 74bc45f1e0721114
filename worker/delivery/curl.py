"""One thread per process that runs every outbound HTTP request, many at once, on libcurl's
multi interface (pycurl): keep-alive connections per target host, one total deadline per
request (CURLOPT_TIMEOUT_MS: connecting, sending, the status line, headers and body together),
and the sockets watched with epoll, so a request costs no thread of its own.

Measured beside urllib3 from a pool of threads, aiohttp on uvloop, and pycurl's blocking easy
interface (`python -m bench.http_clients`, bench/README.md): a request cost a tenth to a
twentieth of urllib3's CPU, and 256 HTTP threads no longer contend for the GIL.

`CurlLoop.submit` hands a `Transfer` over from any thread; its `finish` is called on the
loop's thread once the request is over (answered, failed or cut at its deadline), never more
than once. The loop never raises out: a transfer whose handling fails is finished as failed.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import socket
import threading
import time
from typing import Any, Protocol

import pycurl

log = logging.getLogger("relay.http")
_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
_WANTS = {pycurl.POLL_IN: _IN, pycurl.POLL_OUT: _OUT, pycurl.POLL_INOUT: _IN | _OUT}
_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR


NOT_STARTED = -1
"""The error a transfer is finished with when its `start_by` passed before a slot was free."""


class Transfer(Protocol):
    """What the loop runs: a configured easy handle, the time after which it must not start
    (time.monotonic(), or None), and what to do when it is over."""

    easy: Any
    start_by: float | None

    def finish(self, error: int, message: str) -> None:
        """Called on the loop's thread; `error` is libcurl's code (0: answered)."""


class CurlLoop:
    """Runs transfers on one multi handle (see the module's docstring)."""

    def __init__(self, connections: int) -> None:
        self.limit = connections
        """Transfers run at once; the rest wait their turn, in order."""
        self._lock = threading.Lock()
        self._pending: collections.deque[Transfer] = collections.deque()
        self._running: dict[int, Transfer] = {}
        self._epoll = select.epoll()  # its C calls directly: selectors cost as much again
        self._watched: set[int] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._epoll.register(self._wake_r.fileno(), _IN)
        self._timer: float | None = None
        self._asleep = False
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        # Connections kept alive: as many as requests in flight, per target host and in all.
        self.multi.setopt(pycurl.M_MAXCONNECTS, connections)
        self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, connections)
        self.thread = threading.Thread(target=self._run, name="relay-http", daemon=True)
        self.thread.start()

    def submit(self, transfer: Transfer) -> None:
        """Start `transfer` soon (thread-safe, never blocks)."""
        with self._lock:
            self._pending.append(transfer)
            wake, self._asleep = self._asleep, False
        if wake:
            with contextlib.suppress(BlockingIOError):  # a byte already waits: awake anyway
                self._wake_w.send(b"\0")

    def _on_socket(self, what: int, fd: int, multi: Any, data: Any) -> None:
        if what == pycurl.POLL_REMOVE:
            if fd in self._watched:
                self._watched.discard(fd)
                with contextlib.suppress(OSError):  # closed already: epoll forgot it itself
                    self._epoll.unregister(fd)
            return
        events = _WANTS.get(what, _IN | _OUT)
        if fd in self._watched:
            try:
                self._epoll.modify(fd, events)
                return
            except FileNotFoundError:  # closed and reused behind epoll's back: a new one
                pass
        self._watched.add(fd)
        try:
            self._epoll.register(fd, events)
        except FileExistsError:
            self._epoll.modify(fd, events)

    def _on_timer(self, ms: int) -> None:
        self._timer = None if ms < 0 else time.monotonic() + ms / 1000

    def _run(self) -> None:
        while True:
            try:
                self._turn()
            except Exception as exc:  # a bug must not stop every request of the process
                log.error("http loop: %s", type(exc).__name__)
                time.sleep(0.01)

    def _turn(self) -> None:
        """Start what was submitted, wait for sockets or the timer, let libcurl work, and
        finish what is over."""
        self._start_pending()
        wait = None if self._timer is None else max(0.0, self._timer - time.monotonic())
        if wait is None or wait > 0:
            with self._lock:
                startable = self._pending and len(self._running) < self.limit
                self._asleep = not startable
                if startable:
                    wait = 0
        wake = self._wake_r.fileno()
        for fd, mask in self._epoll.poll(-1 if wait is None else wait):
            if fd == wake:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
                continue
            action = (pycurl.CSELECT_IN if mask & _READABLE else 0) | (
                pycurl.CSELECT_OUT if mask & _OUT else 0
            )
            self.multi.socket_action(fd, action)
        with self._lock:
            self._asleep = False
        if self._timer is not None and time.monotonic() >= self._timer:
            self._timer = None
            self.multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        self._finish_done()

    def _start_pending(self) -> None:
        free = self.limit - len(self._running)
        with self._lock:
            batch = [self._pending.popleft() for _ in range(min(free, len(self._pending)))]
        now = time.monotonic()
        for transfer in batch:
            if transfer.start_by is not None and now >= transfer.start_by:
                _finish(transfer, NOT_STARTED, "not started before its time ran out")
                continue
            try:
                self.multi.add_handle(transfer.easy)
                self._running[id(transfer.easy)] = transfer
            except Exception as exc:
                _finish(transfer, pycurl.E_FAILED_INIT, f"cannot start: {type(exc).__name__}")

    def _finish_done(self) -> None:
        while True:
            queued, ok, failed = self.multi.info_read()
            over = [(easy, 0, "") for easy in ok] + list(failed)
            for easy, error, message in over:
                self.multi.remove_handle(easy)
                transfer = self._running.pop(id(easy), None)
                if transfer is not None:
                    _finish(transfer, error, message)
            if not queued:
                return


def _finish(transfer: Transfer, error: int, message: str) -> None:
    try:
        transfer.finish(error, message)
    except Exception as exc:  # the transfer's own handling failed: logged, the loop goes on
        log.error("http loop: finishing a request failed (%s)", type(exc).__name__)


_loop: CurlLoop | None = None
_loop_pid = 0
_parents: list[CurlLoop] = []
"""A forked child's copy of its parent's loop, kept from the garbage collector: cleaning it
up would close (and for TLS, say goodbye on) connections the parent still uses."""
_loop_lock = threading.Lock()


def get_loop(connections: int) -> CurlLoop:
    """This process's loop (a forked child makes its own: threads do not survive a fork)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _parents.extend([_loop] if _loop is not None else [])
            _loop, _loop_pid = CurlLoop(connections), os.getpid()
        return _loop
