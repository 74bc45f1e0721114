"""The transport's outbound rules on libcurl, against a real local server: only the request's
own headers go out, nothing that could smuggle a header in, no proxy from the environment,
Retry-After read, at most MAX_BODY bytes of an answer kept, TLS peers verified."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tasks.outbound import OutboundRequest
from tests.deploy.test_redis_tls import _certificate
from worker.delivery.transport import MAX_BODY, send

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A local server recording each request's headers; it answers `status`, `headers` and
    `body` (set by a test)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.status, self.headers, self.body = 200, {"Content-Type": "application/json"}, b"{}"
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(recorder.status)
                for name, value in recorder.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(recorder.body)))
                self.end_headers()
                self.wfile.write(recorder.body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _request(server: Recorder, headers: dict[str, str] | None = None) -> OutboundRequest:
    url = f"{server.url}/apis/v0/channels/c/messages"
    return OutboundRequest("medallia", "messages", "POST", url, headers or {}, b"{}", ("m-1",))


def test_only_the_requests_own_headers_go_out(recorder: Recorder) -> None:
    result = send(_request(recorder, {"X-Request": "r-1"}), {"Authorization": "Bearer t-123"}, 5)

    assert result.status == 200
    [seen] = recorder.seen
    assert seen["x-request"] == "r-1" and seen["authorization"] == "Bearer t-123"
    assert seen["user-agent"].startswith("delivery-relay")
    # nothing libcurl would add on its own: no Accept, no form content type, no Expect
    assert not {"accept", "content-type", "expect"} & set(seen)


@pytest.mark.parametrize("where", ["request", "credentials"])
@pytest.mark.parametrize("value", ["v\r\nX-Injected: 1", "v\nX-Injected: 1", "v\0"])
def test_a_header_that_could_smuggle_another_is_never_sent(
    recorder: Recorder, where: str, value: str
) -> None:
    headers = {"X-Value": value}
    request = _request(recorder, headers if where == "request" else None)
    result = send(request, headers if where == "credentials" else {}, 5)

    assert result.status is None
    assert result.network_error is not None and "line break or NUL" in result.network_error
    assert recorder.seen == []


def test_a_proxy_in_the_environment_is_not_used(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a proxy that would see every token (here: nothing listens there, so using it fails)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    result = send(_request(recorder), {"Authorization": "Bearer t-123"}, 5)

    assert result.status == 200 and len(recorder.seen) == 1


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [("120", 120, 120), (formatdate(usegmt=True, timeval=None), 0, 1), (None, None, None)],
)
def test_retry_after_is_read_from_the_answer(
    recorder: Recorder, header: str | None, low: float | None, high: float | None
) -> None:
    recorder.status = 503
    if header is not None:
        recorder.headers = {**recorder.headers, "Retry-After": header}

    result = send(_request(recorder), {}, 5)

    assert result.status == 503
    if low is None:
        assert result.retry_after is None
    else:  # an HTTP date of now: no wait, the same as none
        assert result.retry_after is None or low <= result.retry_after <= (high or 0)


def test_an_answer_bigger_than_max_body_is_cut_and_its_status_kept(recorder: Recorder) -> None:
    recorder.body = b"x" * (MAX_BODY * 4)

    result = send(_request(recorder), {}, 5)

    assert result.status == 200
    assert result.body == b"x" * MAX_BODY


def test_a_tls_target_whose_certificate_does_not_verify_gets_nothing(tmp_path: Path) -> None:
    # given an https server on 127.0.0.1 with a certificate from a CA nobody trusts
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("untrusted CA", ca_key, None, ca_key)
    pem = serialization.Encoding.PEM
    (tmp_path / "server.crt").write_bytes(
        _certificate("127.0.0.1", key, ca.subject, ca_key).public_bytes(pem)
    )
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = Recorder()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    url = server.url.replace("http://", "https://") + "/apis/v0/channels/c/messages"
    try:
        # when a request with a token is sent there
        request = OutboundRequest("medallia", "messages", "POST", url, {}, b"{}", ("m-1",))
        result = send(request, {"Authorization": "Bearer t-123"}, 5)
    finally:
        server.server.shutdown()
        server.server.server_close()

    # then the handshake fails before anything is sent: no request, no token
    assert result.status is None
    assert result.network_error == "connection failed: SSLError"
    assert server.seen == []
