"""Slow and silent clients are cut off: a request must arrive whole within the read deadline
(headers and body), headers are bounded, requests and body bytes in progress are bounded (503
past them), and a client that holds a connection never delays the others (a real `relay
ingress` with short bounds, raw sockets)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.edge import (
    Ingress,
    bogus_twilio,
    closed_within,
    connect,
    edge_ingress,
    holding,
    meta_post,
    metric,
    read_answer,
    status_of,
)
from worker.dev.callbacks import Message

pytestmark = pytest.mark.timeout(120)
DEADLINE = 2.0
BOUNDS = {
    "RELAY_INGRESS_READ_TIMEOUT": str(DEADLINE),
    "RELAY_INGRESS_KEEP_ALIVE": "3",
    "RELAY_INGRESS_MAX_IN_PROGRESS": "4",
    "RELAY_INGRESS_MAX_BYTES": "100000",
    "RELAY_INGRESS_BODY_BUDGET": "250000",
    "RELAY_INGRESS_MAX_HEADER_BYTES": "16384",
    "RELAY_INGRESS_MAX_CONNECTIONS": "40",
}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    with edge_ingress(tmp_path_factory.mktemp("deadlines"), **BOUNDS) as ingress:
        yield ingress


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(edge: Ingress) -> None:
    with connect(edge) as sock:
        assert closed_within(sock, DEADLINE + 2)


def test_a_request_whose_headers_never_end_is_answered_408_and_closed(edge: Ingress) -> None:
    before = metric(edge, "read_timeout")
    with connect(edge) as sock:
        sock.sendall(b"POST /v1/receipts/tw HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Twil")
        started = time.monotonic()
        assert status_of(sock, DEADLINE + 2) == 408
        assert closed_within(sock, 1.0)
        assert time.monotonic() - started < DEADLINE + 1.5
    assert metric(edge, "read_timeout") > before


def test_a_body_that_never_ends_is_answered_408_and_closed(edge: Ingress) -> None:
    with connect(edge) as sock:
        sock.sendall(meta_post(50_000) + b"{" * 20_000)
        assert status_of(sock, DEADLINE + 2) == 408
        assert closed_within(sock, 1.0)


def test_a_client_trickling_a_body_is_cut_off_at_the_deadline_not_per_byte(edge: Ingress) -> None:
    with connect(edge) as sock:
        sock.sendall(meta_post(10_000))
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE + 3:
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.2)
        assert time.monotonic() - started < DEADLINE + 1.5


def test_a_refused_request_whose_body_trickles_is_cut_off_at_the_deadline(edge: Ingress) -> None:
    with connect(edge) as sock:
        sock.sendall(bogus_twilio(1000))
        assert status_of(sock, 2.0) == 401
        sock.sendall(b"x" * 10)
        assert closed_within(sock, DEADLINE + 2)


def test_an_idle_connection_after_a_refused_body_is_closed_by_the_keep_alive(
    edge: Ingress,
) -> None:
    # given a refused post whose announced body the client then sends in full
    with connect(edge) as sock:
        sock.sendall(bogus_twilio(1000))
        assert status_of(sock, 2.0) == 401
        sock.sendall(b"x" * 1000)

        # then the connection is idle, and closed by the keep-alive timeout (3 s here)
        assert closed_within(sock, 3 + 2)


def test_headers_past_their_bound_are_answered_431_and_closed(edge: Ingress) -> None:
    with connect(edge) as sock:
        sock.sendall(b"POST /v1/receipts/tw HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        try:
            for _ in range(10):
                sock.sendall(b"p" * 4096)
        except OSError:
            pass
        answer = read_answer(sock, 3.0)
        assert answer is not None and answer[0] == 431
        assert closed_within(sock, 1.0)
    assert metric(edge, "headers_too_large") >= 1


def test_past_the_bound_on_requests_in_progress_a_callback_is_503_and_health_still_200(
    edge: Ingress,
) -> None:
    # given as many requests in progress as the bound (4), each waiting for its body
    with holding(edge, 4, meta_post(1000) + b"{"):
        # when a genuine callback and a health check come meanwhile
        status, _ = edge.post("tw", Message("SMbusy", "delivered"))
        health, _ = edge.get("/healthz")

    # then the callback was turned away at once (the provider retries), health answered
    assert (status, health) == (503, 200)
    assert metric(edge, "busy") >= 1
    time.sleep(0.3)
    assert edge.post("tw", Message("SMafter", "delivered"))[0] == 200


def test_bodies_past_the_byte_budget_are_503_while_small_callbacks_still_pass(
    edge: Ingress,
) -> None:
    # given two posts holding 100,000 announced body bytes each (a budget of 250,000)
    with holding(edge, 2, meta_post(100_000) + b"{"), connect(edge) as third:
        # when a third announces as much, and a genuine small callback comes
        third.sendall(meta_post(100_000))
        refused = status_of(third, 2.0)
        genuine, _ = edge.post("wa", Message("wamid.budget", "delivered"))

    # then the third is turned away, the small one is taken
    assert (refused, genuine) == (503, 200)


def test_past_the_connection_bound_requests_are_503_until_the_idle_ones_are_cut(
    edge: Ingress,
) -> None:
    silent = [connect(edge) for _ in range(40)]
    try:
        time.sleep(0.3)
        assert edge.get("/healthz")[0] == 503
        for sock in silent:
            assert closed_within(sock, DEADLINE + 3)
        assert edge.get("/healthz")[0] == 200
    finally:
        for sock in silent:
            sock.close()
