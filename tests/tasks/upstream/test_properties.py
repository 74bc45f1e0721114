"""Property tests: whatever a caller sends, normalizers raise nothing but `Unreadable` and
signature checks raise nothing at all (bounded: a few hundred examples each, with a deadline)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.upstream import KINDS, NORMALIZERS, Unreadable
from tasks.upstream.request import RawRequest
from tasks.upstream.signatures import verify
from tests.tasks.upstream.builders import infobip_result, whatsapp_status

BOUNDED = settings(max_examples=200, deadline=timedelta(milliseconds=500))
SECRETS = {
    "auth_token": "t" * 32,
    "app_secret": "a" * 32,
    "verify_token": "v",
    "signature_secret": "s" * 32,
    "token": "a-token-no-example-will-guess",
}
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
        "multipart/form-data",
    ]
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
# Documented shapes with arbitrary values swapped in, so the tests reach past the first check.
KEYS = [
    "id",
    "status",
    "timestamp",
    "recipient_id",
    "errors",
    "messageId",
    "to",
    "doneAt",
    "error",
    "callbackData",
    "message_uuid",
    "client_ref",
    "entry",
    "results",
]


def request(kind: str, method: str, content_type: str, body: bytes, query: str = "") -> RawRequest:
    url = "https://relay.example.com/v1/receipts/x" + (f"?{query}" if query else "")
    return RawRequest.build(method, url, {"Content-Type": content_type}, body)


def normalize_or_unreadable(kind: str, raw: RawRequest) -> None:
    try:
        receipts = NORMALIZERS[kind](raw)
    except Unreadable as exc:
        assert str(exc)
        return
    for receipt in receipts:
        assert receipt.provider_message_id


@pytest.mark.parametrize("kind", KINDS)
@BOUNDED
@given(
    body=st.binary(max_size=400),
    content_type=CONTENT_TYPES,
    method=st.sampled_from(["POST", "GET"]),
    query=st.text(max_size=40),
)
def test_arbitrary_bytes_are_receipts_or_unreadable(
    kind: str, body: bytes, content_type: str, method: str, query: str
) -> None:
    normalize_or_unreadable(kind, request(kind, method, content_type, body, query))


@pytest.mark.parametrize("kind", KINDS)
@BOUNDED
@given(document=json_values)
def test_arbitrary_json_is_receipts_or_unreadable(kind: str, document: Any) -> None:
    normalize_or_unreadable(
        kind, request(kind, "POST", "application/json", json.dumps(document).encode())
    )


@pytest.mark.parametrize("kind", ["whatsapp", "infobip", "vonage"])
@BOUNDED
@given(replacements=st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4))
def test_documented_shapes_with_arbitrary_values_are_receipts_or_unreadable(
    kind: str, replacements: dict[str, Any]
) -> None:
    shapes: dict[str, Any] = {
        "whatsapp": whatsapp_status(**replacements),
        "infobip": {
            "results": [infobip_result("DELIVERED_TO_HANDSET", "DELIVERED", **replacements)]
        },
        "vonage": {"message_uuid": "u", "status": "delivered", "to": "1", **replacements},
    }
    normalize_or_unreadable(
        kind, request(kind, "POST", "application/json", json.dumps(shapes[kind]).encode())
    )


@pytest.mark.parametrize("kind", ["smpp_dlr"])
@BOUNDED
@given(
    text=st.text(max_size=200),
    words=st.lists(
        st.sampled_from(["id:", "stat:", "err:", "done date:", "text:", "DELIVRD", "x"]),
        max_size=12,
    ),
)
def test_arbitrary_receipt_texts_are_receipts_or_unreadable(
    kind: str, text: str, words: list[str]
) -> None:
    body = ("receipt=" + " ".join([*words, text])).encode()
    normalize_or_unreadable(kind, request(kind, "POST", "application/x-www-form-urlencoded", body))


def test_deeply_nested_json_is_unreadable_not_a_crash() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    for kind in KINDS:
        normalize_or_unreadable(kind, request(kind, "POST", "application/json", body))


@pytest.mark.parametrize("kind", KINDS)
@BOUNDED
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "authorization",
                    "x-twilio-signature",
                    "x-hub-signature-256",
                    "x-twilio-webhooks-signature-settings",
                    "content-type",
                ]
            ),
            st.text(max_size=60),
        ),
        max_size=4,
    ),
    body=st.binary(max_size=200),
    query=st.text(max_size=40),
)
def test_signature_checks_refuse_arbitrary_requests_without_raising(
    kind: str, headers: list[tuple[str, str]], body: bytes, query: str
) -> None:
    raw = RawRequest.build(
        "POST", "https://relay.example.com/v1/receipts/x?" + query, headers, body
    )
    assert verify(kind, SECRETS, raw, time.time()) is not None
