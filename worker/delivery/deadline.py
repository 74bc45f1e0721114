"""One total deadline per outbound request: a watchdog that shuts the request's socket down
when its time is up, whatever the request is doing then (connecting, sending, waiting for the
status line, reading headers or the body).

A socket timeout bounds each read, not the request: a target that sends its status line a byte
every second never lets one read time out, and held a 2 s request for minutes. Shutting the
socket down from another thread wakes the blocked call at once (it reads end-of-file or fails),
which no timeout re-armed between reads can do for a library that reads on its own (http.client
reads the status line and headers itself).

Usage, on the thread that sends:

    with WATCHDOG.guard(deadline) as guard:
        ...            # the HTTP client calls `attach(connection)` when it takes a connection
        guard.close()  # before the connection goes back to a pool (another thread may take it)
    guard.expired      # True when the watchdog cut the request

One thread serves every request of the process. Guards are kept in buckets of TICK seconds, so
adding and removing one is O(1) and the thread wakes TICK times a second only while requests are
in flight; a request is cut within TICK after its deadline.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from typing import Any

TICK = 0.05
_local = threading.local()


class Guard:
    """The deadline of one request and the connection it runs on."""

    def __init__(self, watchdog: Watchdog, deadline: float) -> None:
        self.watchdog = watchdog
        self.deadline = deadline
        self.connection: Any = None
        """The HTTP connection in use (an object with `sock`, and `relay_fd` once it opened
        a socket): set by `attach` on the sending thread."""
        self.expired = False
        self.done = False
        self.lock = threading.Lock()
        self.key = 0

    def __enter__(self) -> Guard:
        _local.guard = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The request is over: the watchdog leaves its connection alone from now on."""
        with self.lock:
            self.done = True
        if getattr(_local, "guard", None) is self:
            _local.guard = None
        self.watchdog.remove(self)

    def fire(self) -> bool:
        """Shut the connection's socket down; False when there is none yet (try again)."""
        with self.lock:
            if self.done:
                return True
            self.expired = True
            return _shutdown(self.connection)


def _shutdown(connection: Any) -> bool:
    sock = getattr(connection, "sock", None)
    try:
        if isinstance(sock, socket.socket) and sock.fileno() >= 0:
            # The base class's shutdown: an SSLSocket's own would drop its TLS state under the
            # reading thread's feet (a ValueError instead of a clean end-of-file).
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return True
        fd = getattr(connection, "relay_fd", -1)
        if fd >= 0:
            # During a TLS handshake the socket object is detached and its wrapper not yet
            # handed back: the descriptor is the one both share.
            raw = socket.socket(fileno=fd)
            try:
                raw.shutdown(socket.SHUT_RDWR)
            finally:
                raw.detach()
            return True
    except OSError:
        return True  # already closed or reset: nothing left to cut
    return False


def current_guard() -> Guard | None:
    """The guard of the request this thread is sending, if any."""
    guard: Guard | None = getattr(_local, "guard", None)
    return guard


def attach(connection: Any) -> None:
    """Tell this thread's guard (if any) which connection its request uses."""
    guard: Guard | None = getattr(_local, "guard", None)
    if guard is not None:
        with guard.lock:
            guard.connection = connection


class Watchdog:
    """Cuts guarded requests at their deadlines (see the module's docstring)."""

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self._cond = threading.Condition()
        self._buckets: dict[int, set[Guard]] = {}
        self._pid = 0

    def guard(self, deadline: float) -> Guard:
        """A guard for a request that must be over by `deadline` (time.monotonic())."""
        found = Guard(self, deadline)
        self._add(found, deadline)
        return found

    def _add(self, guard: Guard, when: float) -> None:
        guard.key = math.ceil(when / self.tick)
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: no thread yet
                self._pid = os.getpid()
                self._buckets = {}
                threading.Thread(target=self._run, name="relay-deadlines", daemon=True).start()
            was_empty = not self._buckets
            self._buckets.setdefault(guard.key, set()).add(guard)
            if was_empty:
                self._cond.notify()

    def remove(self, guard: Guard) -> None:
        with self._cond:
            bucket = self._buckets.get(guard.key)
            if bucket is not None:
                bucket.discard(guard)
                if not bucket:
                    del self._buckets[guard.key]

    def _due(self) -> list[Guard]:
        """Wait until guards are due; take them out of their buckets."""
        with self._cond:
            while True:
                if not self._buckets:
                    self._cond.wait()
                    continue
                now = math.floor(time.monotonic() / self.tick)
                keys = [k for k in self._buckets if k <= now]
                if keys:
                    return [g for k in keys for g in self._buckets.pop(k)]
                self._cond.wait(self.tick)

    def _run(self) -> None:
        while True:
            for guard in self._due():
                if not guard.fire():
                    # Still connecting (no socket yet): look again at the next tick.
                    self._add(guard, time.monotonic() + self.tick)


WATCHDOG = Watchdog()
"""The process's watchdog for outbound requests."""
