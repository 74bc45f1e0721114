"""Refused before read: what can be judged from a request's line and headers (the kind's body
cap against Content-Length, the token, a signature header's presence and shape, a Vonage JWT)
is judged before one byte of the body is read; a malformed Host is a 4xx, never a 500 (a real
`relay ingress` on a redis-server of its own, raw sockets)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.edge import (
    FORM,
    META_SHAPED,
    SECRETS,
    TWILIO_SHAPED,
    Ingress,
    bogus_twilio,
    closed_within,
    connect,
    edge_ingress,
    head,
    read_answer,
    status_of,
)
from worker.dev.callbacks import Message

pytestmark = pytest.mark.timeout(120)
MIB = 1 << 20


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    with edge_ingress(tmp_path_factory.mktemp("edge"), RELAY_INGRESS_READ_TIMEOUT="3") as ingress:
        yield ingress


def vonage_jwt(**claims: object) -> str:
    digest = hashlib.sha256(b"{}").hexdigest()
    return jwt.encode({"payload_hash": digest, **claims}, SECRETS["VG_SECRET"], algorithm="HS256")


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"u:{password}".encode()).decode()


# (source and query, headers, announced body length, the answer expected before any body byte)
REFUSED_UNREAD = [
    ("tw", {"X-Twilio-Signature": "bogus", "Content-Type": FORM}, 60_000, 401),
    ("tw", {"X-Twilio-Signature": "bogus", "Content-Type": FORM}, MIB, 413),
    ("tw", {"X-Twilio-Signature": TWILIO_SHAPED, "Content-Type": FORM}, 65_537, 413),
    ("tw", {"Content-Type": FORM}, 1000, 401),
    ("wa", {}, 1000, 401),
    ("wa", {"X-Hub-Signature-256": "sha256=not-hex"}, 1000, 401),
    ("wa", {"X-Hub-Signature-256": META_SHAPED}, MIB + 1, 413),
    ("vg", {"Authorization": "Bearer not.a.jwt"}, 1000, 401),
    ("vg", {"Authorization": "Bearer " + vonage_jwt(iat=float("nan"))}, 1000, 401),
    ("vg", {"Authorization": "Bearer " + vonage_jwt(iat=1e300)}, 1000, 401),
    ("ib", {}, 1000, 401),
    ("ib", {"Authorization": basic("wrong")}, 1000, 401),
    ("ib?token=wrong", {}, 1000, 401),
    ("ib", {"Authorization": basic(SECRETS["IB_TOKEN"])}, MIB + 1, 413),
    ("smpp", {"Authorization": basic("wrong")}, 1000, 401),
    ("nobody", {}, 1000, 404),
]


@pytest.mark.parametrize(("where", "headers", "length", "expected"), REFUSED_UNREAD)
def test_what_the_head_refuses_is_answered_before_the_body_is_sent(
    edge: Ingress, where: str, headers: dict[str, str], length: int, expected: int
) -> None:
    # given a request whose line and headers already say it will be refused
    with connect(edge) as sock:
        # when only its head is sent, none of the body it announces
        sock.sendall(head("POST", f"/v1/receipts/{where}", headers, length))

        # then the answer comes at once
        assert status_of(sock, 3.0) == expected


def test_a_refused_body_that_fits_its_cap_is_passed_over_and_the_connection_kept(
    edge: Ingress,
) -> None:
    # given a refused Twilio post whose body the client sends after the answer
    with connect(edge) as sock:
        sock.sendall(bogus_twilio(5000))
        assert status_of(sock, 3.0) == 401
        sock.sendall(b"x" * 5000)

        # when the client asks again on the same connection
        sock.sendall(head("GET", "/healthz"))

        # then the body was passed over, not read as a request, and the answer is the health's
        assert status_of(sock, 3.0) == 200


def test_a_body_announced_over_its_cap_is_answered_413_and_the_connection_closed(
    edge: Ingress,
) -> None:
    with connect(edge) as sock:
        sock.sendall(bogus_twilio(50 * MIB))
        answer = read_answer(sock, 3.0)
        assert answer is not None and answer[0] == 413
        assert answer[1].get("connection") == "close"
        assert closed_within(sock, 3.0)


def test_a_form_of_too_many_fields_is_refused_without_being_signed_over(edge: Ingress) -> None:
    # given a correctly signed Twilio callback padded with 20,000 empty fields (under 64 KiB)
    callback = edge.callback("tw", Message("SMmany", "delivered"))
    body = callback.body + b"&" + b"&".join([b"a="] * 20_000)
    assert len(body) < 65_536

    # when it is posted
    status, _ = edge.request("POST", callback.url, callback.headers, body)

    # then it is refused (its signature is never computed over so many fields)
    assert status == 401


@pytest.mark.parametrize(
    "host", ["hooks.example.com:xyz", "hooks.example.com:99999", "[::1", "a b", ":80", ""]
)
def test_a_malformed_host_is_a_400_not_a_500(edge: Ingress, host: str) -> None:
    callback = edge.callback("tw", Message("SMhost", "delivered"))
    headers = {k: v for k, v in callback.headers.items()}
    with connect(edge) as sock:
        request = head("POST", "/v1/receipts/tw", headers, len(callback.body))
        request = request.replace(b"Host: 127.0.0.1", b"Host: " + host.encode("latin-1"))
        sock.sendall(request + callback.body)
        assert status_of(sock, 5.0) == 400


HOST_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=st.text(HOST_CHARS, max_size=40), path=st.text(HOST_CHARS, max_size=30))
def test_no_host_or_path_makes_the_ingress_answer_500(edge: Ingress, host: str, path: str) -> None:
    callback = edge.callback("tw", Message("SMfuzz", "delivered"))
    with connect(edge) as sock:
        request = head("POST", "/v1/receipts/tw" + path, callback.headers, len(callback.body))
        request = request.replace(b"Host: 127.0.0.1", b"Host: " + host.encode())
        sock.sendall(request + callback.body)
        status = status_of(sock, 5.0)
    assert status is None or status < 500, (host, path, status)
    assert b"Traceback" not in edge.log.read_bytes()
