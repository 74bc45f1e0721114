"""Measured under attack, with the default bounds: one `relay ingress` process (as the docs
start it, a redis-server of its own) flooded by 4 clients posting unauthenticated 1 MiB
bodies keeps its memory within 60 MB of its idle size and answers /healthz with a p90 under
250 ms; 150 silent clients are cut off within 45 s while a genuine callback is answered in
under 2 s. Loopback only; every loop bounded by time."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bench.flood import BODY, flood, heads
from tests.support.edge import Ingress, closed_within, connect, edge_ingress, meta_post, rss_mb
from worker.dev.callbacks import Message

FLOOD_SECONDS = 8.0
FLOOD = heads("tw", "wa", "ib", "vg")


@pytest.fixture
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    with edge_ingress(tmp_path_factory.mktemp("hostile")) as ingress:
        yield ingress


def sample(until: float, every: float, probe: Callable[[], float]) -> list[float]:
    values = []
    while time.monotonic() < until:
        values.append(probe())
        time.sleep(every)
    return values


def health_ms(ingress: Ingress) -> float:
    started = time.perf_counter()
    status, _ = ingress.get("/healthz")
    assert status == 200
    return (time.perf_counter() - started) * 1000


def warm_up(ingress: Ingress) -> float:
    """Idle size: after a few genuine callbacks and health checks, as a running ingress is."""
    for i in range(20):
        assert ingress.post("tw", Message(f"SMwarm{i}", "delivered"))[0] == 200
        health_ms(ingress)
    time.sleep(0.5)
    return rss_mb(ingress)


@pytest.mark.timeout(90)
def test_a_flood_of_unauthenticated_1mib_posts_costs_little_memory_and_health_stays_fast(
    edge: Ingress, figures: Callable[..., None]
) -> None:
    # given an ingress at its idle size
    idle = warm_up(edge)

    # when 4 clients post unauthenticated 1 MiB bodies for a while, health checked meanwhile
    until = time.monotonic() + FLOOD_SECONDS
    posts: list[int] = []
    attack = threading.Thread(
        target=lambda: posts.append(flood(("127.0.0.1", edge.port), FLOOD, FLOOD_SECONDS))
    )
    attack.start()
    rss: list[float] = []
    watcher = threading.Thread(target=lambda: rss.extend(sample(until, 0.1, lambda: rss_mb(edge))))
    watcher.start()
    latencies = sample(until, 0.05, lambda: health_ms(edge))
    for thread in (attack, watcher):
        thread.join(timeout=40)

    # then memory stays within 60 MB of idle, health's p90 under 250 ms, callbacks still taken
    p90 = statistics.quantiles(latencies, n=10)[-1]
    growth = max(rss) - idle
    figures(
        flood_posts=posts[0],
        idle_rss_mb=idle,
        peak_rss_growth_mb=round(growth, 1),
        healthz_p90_ms=round(p90, 1),
        healthz_max_ms=round(max(latencies), 1),
    )
    assert growth <= 60, f"{idle} MB idle, {max(rss)} MB at peak"
    assert p90 < 250
    assert edge.post("tw", Message("SMafterflood", "delivered"))[0] == 200


def silent_clients(ingress: Ingress) -> list[socket.socket]:
    """150 connections that hold on: nothing sent, a partial head, a partial body read by the
    app (a Meta signature of the right shape), and the finding's: a Twilio post announcing
    1 MiB, all but its last byte sent, no credentials."""
    socks = [connect(ingress, timeout=2) for _ in range(150)]
    for i, sock in enumerate(socks):
        if i % 4 == 1:
            sock.sendall(b"POST /v1/receipts/tw HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tw")
        elif i % 4 == 2:
            sock.sendall(meta_post(5000) + b"{" * 4000)
        elif i % 4 == 3:
            with contextlib.suppress(OSError):  # refused at once and cut off: as it should
                sock.sendall(FLOOD[0] + BODY[:-1])
    return socks


@pytest.mark.timeout(120)
def test_150_silent_clients_are_cut_off_and_never_delay_a_genuine_callback(
    edge: Ingress, figures: Callable[..., None]
) -> None:
    # given 150 clients holding connections open
    warm_up(edge)
    started = time.monotonic()
    socks = silent_clients(edge)
    try:
        # when a provider sends a genuine signed callback meanwhile
        time.sleep(1.0)
        sent = time.perf_counter()
        status, _ = edge.post("tw", Message("SMgenuine", "delivered"))
        answered = time.perf_counter() - sent

        # then it is answered at once, and every silent client is cut off within 45 s
        deadline = started + 45
        open_at = [
            i
            for i, sock in enumerate(socks)
            if not closed_within(sock, max(0.01, deadline - time.monotonic()))
        ]
        cut = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    figures(genuine_answer_ms=round(answered * 1000, 1), all_cut_off_after_s=round(cut, 1))
    assert status == 200 and answered < 2.0
    assert not open_at and cut < 45
