"""The ingress as an attacker meets it: `relay ingress` started as the docs say, with a
redis-server of its own, and raw-socket clients that send what they like, as slowly as they
like (loopback only; every wait bounded)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.flood import FORM, META_SHAPED, TWILIO_SHAPED, head
from tests.support.harness import Relay, worker_rss_mb
from tests.support.ingress import INGRESS_CONFIG, SECRETS, Ingress
from worker.dev.local_redis import LocalRedis
from worker.settings import get_settings


@contextmanager
def edge_ingress(tmp: Path, **env: str) -> Iterator[Ingress]:
    """`relay ingress` (the sources of `tests.support.ingress`) on a redis-server of its own,
    with `env` added to its environment; stopped, with its Redis, after."""
    server = LocalRedis().start()
    patch = pytest.MonkeyPatch()
    relay = Relay(tmp, server.url, "http://127.0.0.1:9", patch, INGRESS_CONFIG)
    try:
        yield Ingress(relay, **env)
    finally:
        relay.stop_all()
        patch.undo()
        get_settings.cache_clear()
        server.stop()


def rss_mb(ingress: Ingress) -> float:
    """The ingress process's resident memory, MB."""
    return worker_rss_mb(ingress.process)


def connect(ingress: Ingress, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", ingress.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bogus_twilio(length: int) -> bytes:
    """The head of a Twilio post announcing `length` body bytes, signed "bogus"."""
    return head("POST", "/v1/receipts/tw", {"X-Twilio-Signature": "bogus"}, length)


def meta_post(length: int) -> bytes:
    """The head of a WhatsApp post whose signature has the right shape (so its body must be
    read) announcing `length` body bytes."""
    headers = {"X-Hub-Signature-256": META_SHAPED, "Content-Type": "application/json"}
    return head("POST", "/v1/receipts/wa", headers, length)


@contextmanager
def holding(ingress: Ingress, count: int, request: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections, each holding `request` in progress (sent, and left unfinished),
    closed after."""
    held = [connect(ingress) for _ in range(count)]
    try:
        for sock in held:
            sock.sendall(request)
        time.sleep(0.3)  # until the ingress has them all in hand
        yield held
    finally:
        for sock in held:
            sock.close()


def read_answer(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes] | None:
    """The next answer on `sock` (status, lower-cased headers, body), read exactly (what comes
    after it stays for the next call), or None when the server closed the connection, or said
    nothing within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        top = _head_of_answer(sock, time.monotonic() + timeout)
        if top is None:
            return None
        lines = top.decode("latin-1").split("\r\n")
        headers = dict(
            (k.strip().lower(), v.strip()) for k, _, v in (x.partition(":") for x in lines[1:])
        )
        body = b""
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(min(length - len(body), 65536))
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body
    except (TimeoutError, ConnectionError):
        return None


def _head_of_answer(sock: socket.socket, deadline: float) -> bytes | None:
    """An answer's status line and headers, taken off the socket up to the blank line only."""
    while time.monotonic() < deadline:
        seen = sock.recv(65536, socket.MSG_PEEK)
        if not seen:
            return None
        end = seen.find(b"\r\n\r\n")
        if end >= 0:
            return sock.recv(end + 4)[:end]
        if len(seen) >= 65536:
            raise ConnectionError("an answer's head over 64 KiB")
        time.sleep(0.01)  # more of the head is on its way
    raise TimeoutError


def status_of(sock: socket.socket, timeout: float) -> int | None:
    answer = read_answer(sock, timeout)
    return answer[0] if answer else None


def closed_within(sock: socket.socket, timeout: float) -> bool:
    """True when the server closes the connection (end of stream or a reset) within
    `timeout` seconds; whatever it answers first is read and passed over."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except ConnectionError:
            return True
        except TimeoutError:
            return False
    return False


def metric(ingress: Ingress, outcome: str, source: str = "-") -> float:
    """relay_ingress_requests_total{source, outcome} as the ingress's /metrics says."""
    text = ingress.get("/metrics")[1].decode()
    pattern = (
        r'relay_ingress_requests_total\{outcome="' + re.escape(outcome) + r'",source="'
        r"" + re.escape(source) + r'"\} ([0-9.e+]+)'
    )
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


__all__ = ["FORM", "META_SHAPED", "SECRETS", "TWILIO_SHAPED", "Ingress", "head"]
