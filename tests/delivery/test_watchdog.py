"""The deadline watchdog on its own: it cuts a blocked read at the deadline, by the socket or by
its descriptor alone (a TLS handshake's), never early and never after the request is over."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import pytest

from worker.delivery.deadline import TICK, Watchdog, attach

pytestmark = pytest.mark.timeout(30)


@dataclass
class Connection:
    sock: socket.socket | None
    relay_fd: int = -1


def _blocked_read(sock: socket.socket, got: list[tuple[bytes, float]]) -> threading.Thread:
    def read() -> None:
        try:
            got.append((sock.recv(10), time.monotonic()))
        except OSError as exc:
            got.append((repr(exc).encode(), time.monotonic()))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("by", ["socket", "descriptor"])
def test_a_blocked_read_ends_at_the_deadline(by: str) -> None:
    # given a read that would block for ever, on a connection known by its socket or only by
    # its descriptor (the socket object detached, as during a TLS handshake)
    ours, theirs = socket.socketpair()
    connection = Connection(ours) if by == "socket" else Connection(None, ours.fileno())
    watchdog = Watchdog()
    got: list[tuple[bytes, float]] = []

    # when the request's guard says 0.3 s
    started = time.monotonic()
    with watchdog.guard(started + 0.3) as guard:
        attach(connection)
        _blocked_read(ours, got).join(5)

    # then the read ended (end-of-file) at the deadline, within a few ticks, not before
    [(data, ended)] = got
    assert data == b"" and guard.expired
    assert 0.3 <= ended - started < 0.3 + 4 * TICK + 0.2
    ours.close()
    theirs.close()


def test_a_request_over_before_its_deadline_is_left_alone() -> None:
    # given a guarded request that ends at once, and its connection then used by another
    ours, theirs = socket.socketpair()
    watchdog = Watchdog()
    with watchdog.guard(time.monotonic() + 0.2) as guard:
        attach(Connection(ours))

    # when the old deadline passes while the connection is read again
    got: list[tuple[bytes, float]] = []
    reader = _blocked_read(ours, got)
    time.sleep(0.2 + 4 * TICK)
    theirs.sendall(b"still here")
    reader.join(5)

    # then nothing was cut
    assert [data for data, _ in got] == [b"still here"] and not guard.expired
    ours.close()
    theirs.close()


def test_a_guard_with_no_connection_yet_is_cut_once_it_has_one() -> None:
    # given a request still connecting when its deadline passes
    ours, theirs = socket.socketpair()
    watchdog = Watchdog()
    got: list[tuple[bytes, float]] = []
    with watchdog.guard(time.monotonic() + 0.1) as guard:
        time.sleep(0.3)
        # when the connection arrives late
        attach(Connection(ours))
        _blocked_read(ours, got).join(5)

    # then it is cut at the next tick
    assert got and got[0][0] == b"" and guard.expired
    ours.close()
    theirs.close()
