"""A source's own edge settings, through a real `relay ingress`: `query_token = false` refuses a
token in the query string (proxies log query strings) while the Basic password still works, and
`max_body_bytes` caps that source's bodies below its kind's default."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.edge import connect, head, status_of
from tests.support.harness import CONFIG, Relay
from tests.support.ingress import SECRETS, SOURCES, Ingress
from worker.dev.local_redis import LocalRedis
from worker.settings import get_settings

pytestmark = pytest.mark.timeout(90)
STRICT = """
[sources.strict]
kind = "smpp_dlr"
token = "${{SMPP_TOKEN}}"
target = "sf"
query_token = false
max_body_bytes = 2048
"""
RECEIPT = "id:abc123 sub:001 dlvrd:001 submit date:2601010100 done date:2601010101 stat:DELIVRD"


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    tmp: Path = tmp_path_factory.mktemp("strict")
    server = LocalRedis().start()
    patch = pytest.MonkeyPatch()
    relay = Relay(tmp, server.url, "http://127.0.0.1:9", patch, CONFIG + SOURCES + STRICT)
    try:
        yield Ingress(relay)
    finally:
        relay.stop_all()
        patch.undo()
        get_settings.cache_clear()
        server.stop()


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"gw:{password}".encode()).decode()}


def test_a_source_that_refuses_query_tokens_refuses_the_right_token_there(
    ingress: Ingress,
) -> None:
    # given the right token, once in the query string of each source kind
    path = f"/v1/receipts/{{}}?token={SECRETS['SMPP_TOKEN']}&receipt={RECEIPT.replace(' ', '+')}"
    # when each is sent as a gateway's GET callback
    strict, _ = ingress.request("GET", path.format("strict"))
    lenient, _ = ingress.request("GET", path.format("smpp"))
    # then the strict source refuses it (401) and the other takes it
    assert strict == 401
    assert lenient == 200


def test_a_source_that_refuses_query_tokens_takes_the_basic_password(ingress: Ingress) -> None:
    path = f"/v1/receipts/strict?receipt={RECEIPT.replace(' ', '+')}"
    status, body = ingress.request("GET", path, basic(SECRETS["SMPP_TOKEN"]))
    assert status == 200, body


def test_a_source_body_cap_is_its_own_and_refused_from_the_head(ingress: Ingress) -> None:
    # given a request announcing 4 KiB: over the strict source's 2 KiB, under its kind's 64 KiB
    for source, expected in (("strict", 413), ("smpp", None)):
        with connect(ingress) as sock:
            # when only its head is sent
            sock.sendall(head("POST", f"/v1/receipts/{source}", basic(SECRETS["SMPP_TOKEN"]), 4096))
            # then the strict source refuses it before the body, the other waits for the body
            assert status_of(sock, 2.0) == expected
