"""The transport's answers to network failures, against real local sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tasks.outbound import OutboundRequest
from worker.delivery.transport import send

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: nothing listens there


def _request(port: int) -> OutboundRequest:
    url = f"http://127.0.0.1:{port}/apis/v0/channels/c/messages"
    return OutboundRequest("medallia", "messages", "POST", url, {}, b"{}", ("m-1",))


def test_a_refused_connection_says_so(silent_port: int) -> None:
    result = send(_request(_refused_port()), {}, 2.0)
    assert result.status is None
    assert result.network_error == "connection failed: ConnectionRefusedError"


def test_a_target_that_never_answers_is_a_read_timeout(silent_port: int) -> None:
    result = send(_request(silent_port), {}, 0.3)
    assert result.status is None
    assert result.network_error == "no complete answer within 0.3s"
    assert 0.25 < result.duration < 5
