"""The relay the hostile trust tests attack: a real worker and a real ingress on the session's
Redis and sandbox, with sources of their own besides the usual ones (a signed one, tight
quotas, a small dead-letter bound), and an HTTP client that keeps the answer's headers."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ingress.conftest import Stack, running_stack
from tests.support.ingress import INGRESS_CONFIG, SECRETS, Ingress
from worker.dev.callbacks import BUILDERS, Callback, Message
from worker.dev.sandbox import Sandbox

REF_KEY = "reference-key-0123456789abcdef0123"
TRUST_SOURCES = """
[sources.signed]
kind = "infobip"
token = "${{IB_TOKEN}}"
target = "md"
reference_key = "${{REF_KEY}}"

[sources.tight]
kind = "infobip"
token = "${{IB_TOKEN}}"
target = "md"
receipts_per_second = 1
max_receipts = 5

[sources.few]
kind = "smpp_dlr"
token = "${{SMPP_TOKEN}}"
target = "sf"
max_waiting = 3
correlation_wait = 120

[sources.junk]
kind = "infobip"
token = "${{IB_TOKEN}}"
target = "md"
max_dead_letters = 3
"""
ENV = {**SECRETS, "REF_KEY": REF_KEY}


@pytest.fixture(scope="module")
def trust(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, sandbox_server: Sandbox
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("trust")
    config = INGRESS_CONFIG + TRUST_SOURCES
    with running_stack(tmp, redis_url, sandbox_server, config, ENV) as running:
        yield running


def infobip(ingress: Ingress, source: str, *messages: Message) -> Callback:
    """An Infobip delivery report for `source` (any infobip source of the stack)."""
    url = f"{ingress.url}/v1/receipts/{source}"
    return BUILDERS["infobip"](url, SECRETS["IB_TOKEN"], list(messages))


def smpp(ingress: Ingress, source: str, message: Message) -> Callback:
    url = f"{ingress.url}/v1/receipts/{source}"
    return BUILDERS["smpp_dlr"](url, SECRETS["SMPP_TOKEN"], [message])


def send(callback: Callback) -> tuple[int, dict[str, str], Any]:
    """Send a callback; status, headers (lower-case names) and the body (JSON when it is)."""
    parts = urlsplit(callback.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(callback.method, path, body=callback.body, headers=callback.headers)
        response = connection.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, json.loads(body) if body.startswith(b"{") else body
    finally:
        connection.close()
