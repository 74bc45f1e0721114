"""The Medallia look-alike: valid receipts answered OK, invalid or unsigned ones refused."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from tests.dev.sandbox.builders import (
    MEDALLIA,
    Mutation,
    medallia_body,
    medallia_headers,
    post_json,
    set_at,
    set_header,
)
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("status", ["sent", "delivered", "failed", "undelivered"])
def test_valid_medallia_receipt_is_answered_ok(sandbox: Sandbox, status: str) -> None:
    response = post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body(status))

    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert sandbox.requests()[0]["endpoint"] == "messages"


def test_medallia_accepts_a_hub_signature_instead_of_a_bearer(sandbox: Sandbox) -> None:
    raw = json.dumps(medallia_body()).encode()
    signature = hmac.new(b"hub-secret", raw, hashlib.sha1).hexdigest()
    headers = {k: v for k, v in medallia_headers().items() if k != "authorization"}

    response = requests.post(
        sandbox.url + MEDALLIA,
        headers={**headers, "X-Hub-Signature": f"sha1={signature}"},
        data=raw,
        timeout=5,
    )

    assert response.status_code == 200
    assert sandbox.requests()[0]["headers"]["X-Hub-Signature"] == "***"


ITEM = ["entry", 0, "messaging", 0]

MEDALLIA_CASES = [
    ("time in ms", set_at(["entry", 0, "time"], 1770163786000), "in epoch milliseconds"),
    ("watermark", set_at([*ITEM, "delivery", "watermark"], 1770163786), "watermark is deprecated"),
    ("error missing", set_at([*ITEM, "delivery", "status"], "failed"), "error is required"),
    ("error on delivered", set_at([*ITEM, "error"], {"code": 1, "name": "x"}), "must be absent"),
    ("recipient id", set_at([*ITEM, "recipient", "id"], "other"), "must equal the entry's id"),
    ("status", set_at([*ITEM, "delivery", "status"], "read"), "status must be one of"),
    ("empty mids", set_at([*ITEM, "delivery", "mids"], []), "mids must be a non-empty array"),
    ("object", set_at(["object"], "user"), 'object must be "page"'),
    ("no accept", set_header("accept", None), "header accept must be text/plain"),
]


@pytest.mark.parametrize(
    ("mutate", "problem"), [c[1:] for c in MEDALLIA_CASES], ids=[c[0] for c in MEDALLIA_CASES]
)
def test_invalid_medallia_receipt_is_refused(
    sandbox: Sandbox, mutate: Mutation, problem: str
) -> None:
    headers, body = medallia_headers(), medallia_body()
    mutate(headers, body)

    response = post_json(sandbox.url, MEDALLIA, headers, body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["statusCode"] == 400 and answer["error"] == "Bad Request"
    assert problem in answer["message"]


def test_medallia_error_code_must_be_an_integer(sandbox: Sandbox) -> None:
    body = medallia_body("undelivered")
    body["entry"][0]["messaging"][0]["error"]["code"] = "207"

    response = post_json(sandbox.url, MEDALLIA, medallia_headers(), body)

    assert response.status_code == 400
    assert "error.code must be an integer, got a string" in response.json()["message"]


def test_medallia_wrong_signature_is_unauthorized_in_plain_text(sandbox: Sandbox) -> None:
    headers = {**medallia_headers(), "X-Hub-Signature": "sha1=00"}
    del headers["authorization"]

    response = post_json(sandbox.url, MEDALLIA, headers, medallia_body())

    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "X-Hub-Signature" in response.text
