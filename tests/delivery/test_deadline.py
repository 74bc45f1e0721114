"""One total deadline per outbound request: connecting, sending, the status line, the headers
and the body together, against real local servers that trickle or never read."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tasks.outbound import OutboundRequest
from tests.support.trickle import TrickleServer
from worker.delivery.auth import AuthError, ClientCredentials
from worker.delivery.transport import send

pytestmark = pytest.mark.timeout(60)
TIMEOUT = 1.0
SLACK = 0.6  # the watchdog's tick, a thread switch and this machine's noise


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[TrickleServer]:
    found = TrickleServer(mode=request.param)
    yield found
    found.stop()


def _request(server: TrickleServer, body: bytes = b"{}") -> OutboundRequest:
    url = f"{server.url}/apis/v0/channels/c/messages"
    return OutboundRequest("medallia", "messages", "POST", url, {}, body, ("m-1",))


@pytest.mark.parametrize("server", ["head"], indirect=True)
def test_a_status_line_and_headers_trickled_a_byte_at_a_time_are_cut_at_the_deadline(
    server: TrickleServer,
) -> None:
    # given a target that sends its status line and headers a byte every 0.1 s (about 9 s in
    # all, while no single read waits longer than 0.1 s)
    # when a request with a 1 s timeout is sent
    started = time.monotonic()
    result = send(_request(server), {}, TIMEOUT)
    took = time.monotonic() - started

    # then it ends at the deadline, as an answer that did not come in time
    assert result.status is None
    assert result.network_error == f"no complete answer within {TIMEOUT:g}s"
    assert TIMEOUT <= took < TIMEOUT + SLACK


@pytest.mark.parametrize("server", ["body"], indirect=True)
def test_a_body_trickled_a_byte_at_a_time_is_cut_at_the_deadline(server: TrickleServer) -> None:
    started = time.monotonic()
    result = send(_request(server), {}, TIMEOUT)
    took = time.monotonic() - started

    assert result.status is None
    assert result.network_error is not None and "within 1s" in result.network_error
    assert TIMEOUT <= took < TIMEOUT + SLACK


@pytest.mark.parametrize("server", ["deaf"], indirect=True)
def test_a_target_that_never_reads_the_request_is_cut_at_the_deadline(
    server: TrickleServer,
) -> None:
    # given a target that accepts the connection and reads nothing, and a body larger than the
    # sockets' buffers, so that sending blocks
    body = b"x" * (32 << 20)

    started = time.monotonic()
    result = send(_request(server, body), {}, TIMEOUT)
    took = time.monotonic() - started

    assert result.status is None
    assert result.network_error == f"no complete answer within {TIMEOUT:g}s"
    assert TIMEOUT <= took < TIMEOUT + SLACK + 0.5  # the kernel copies 32 MiB meanwhile


@pytest.mark.parametrize("server", ["quick"], indirect=True)
def test_quick_answers_are_untouched_and_keep_their_connection(server: TrickleServer) -> None:
    # when many requests are sent one after the other, each well within its deadline
    results = [send(_request(server), {}, TIMEOUT) for _ in range(20)]
    time.sleep(TIMEOUT + SLACK)  # deadlines passed: nothing may fire on a connection now idle
    results.append(send(_request(server), {}, TIMEOUT))

    # then each is a 200, all over one kept-alive connection
    assert [r.status for r in results] == [200] * 21
    assert server.connections == 1


@pytest.mark.parametrize("server", ["head", "body"], indirect=True)
def test_a_token_fetch_ends_by_the_callers_deadline(server: TrickleServer) -> None:
    # given a token endpoint that trickles its answer, and a provider allowed 10 s a fetch
    auth = ClientCredentials(
        {"token_url": f"{server.url}/token", "client_id": "id", "client_secret": "cs-1234"}, 10.0
    )

    # when headers are asked for by a task with 1 s left
    started = time.monotonic()
    with pytest.raises(AuthError, match="within 1s"):
        auth.headers(_request(server), deadline=started + TIMEOUT)
    took = time.monotonic() - started

    # then the fetch gave up at the task's deadline
    assert TIMEOUT <= took < TIMEOUT + SLACK
