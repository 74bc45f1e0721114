"""What is checked from a callback's head alone (before its body is read), a Vonage JWT's
times, and the cost of a form: parsed once per request, bounded in fields, nothing kept."""

from __future__ import annotations

import gc
import hashlib
import time
import tracemalloc
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.upstream import NORMALIZERS
from tasks.upstream.request import RawRequest, form_pairs
from tasks.upstream.signatures import check_body, check_head, twilio_signature, verify

NOW = time.time()
TOKEN = "twilio-auth-token-0123456789abcdef"
SECRET = "a-signature-secret-of-32-bytes-at-least!"
SECRETS = {
    "auth_token": TOKEN,
    "app_secret": SECRET,
    "verify_token": "v",
    "signature_secret": SECRET,
    "token": "tok-1",
}
URL = "https://relay.example.com/v1/receipts/x"
FIELDS = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15551234567"}


def twilio_request(fields: dict[str, str] = FIELDS, body: bytes | None = None) -> RawRequest:
    signature = twilio_signature(TOKEN, URL, list(fields.items()), "HMAC_SHA1")
    data = urlencode(fields).encode() if body is None else body
    return RawRequest.build("POST", URL, {"X-Twilio-Signature": signature}, data)


def headless(request: RawRequest) -> RawRequest:
    return RawRequest(request.method, request.url, request.headers, request.query, b"")


@pytest.mark.parametrize(
    ("kind", "headers", "refused"),
    [
        ("twilio", {}, True),
        ("twilio", {"X-Twilio-Signature": "bogus"}, True),
        ("twilio", {"X-Twilio-Signature": "A" * 27 + "="}, False),  # shape of HMAC-SHA1
        ("twilio", {"X-Twilio-Signature": "A" * 43 + "="}, True),  # SHA-256 size, SHA-1 said
        ("whatsapp", {}, True),
        ("whatsapp", {"X-Hub-Signature-256": "sha256=abc"}, True),
        ("whatsapp", {"X-Hub-Signature-256": "sha256=" + "g" * 64}, True),
        ("whatsapp", {"X-Hub-Signature-256": "sha256=" + "A0" * 32}, False),
        ("vonage", {"Authorization": "Bearer x.y.z"}, True),
        ("infobip", {"Authorization": "Basic dTp0b2stMQ=="}, False),  # u:tok-1
        ("infobip", {"Authorization": "Basic dTp0b2stMg=="}, True),
        ("smpp_dlr", {}, True),
    ],
)
def test_the_head_is_judged_without_the_body(
    kind: str, headers: dict[str, str], refused: bool
) -> None:
    request = RawRequest.build("POST", URL, headers, b"")
    assert (check_head(kind, SECRETS, request, NOW) is not None) is refused


def test_a_genuine_callback_passes_its_head_check_before_its_body_is_known() -> None:
    signed = twilio_request()
    assert check_head("twilio", SECRETS, headless(signed), NOW) is None
    assert check_body("twilio", SECRETS, signed, NOW) is None
    assert check_body("twilio", SECRETS, headless(signed), NOW) is not None


def vonage_head(**claims: object) -> RawRequest:
    base: dict[str, object] = {"iat": int(NOW), "payload_hash": hashlib.sha256(b"{}").hexdigest()}
    token = jwt.encode({**base, **claims}, SECRET, algorithm="HS256")
    return RawRequest.build("POST", URL, {"Authorization": f"Bearer {token}"}, b"{}")


@pytest.mark.parametrize(
    ("claims", "refused"),
    [
        ({}, False),
        ({"iat": float("nan")}, True),
        ({"iat": float("inf")}, True),
        ({"iat": -float("inf")}, True),
        ({"iat": 1e300}, True),
        ({"iat": True}, True),
        ({"iat": "1700000000"}, True),
        ({"exp": float("nan")}, True),
        ({"exp": NOW - 120}, True),
        ({"exp": NOW + 60}, False),
        ({"nbf": float("nan")}, True),
        ({"nbf": NOW + 3600}, True),
        ({"payload_hash": "not-a-sha256"}, True),
    ],
)
def test_a_vonage_jwt_with_absurd_times_is_refused_from_its_head(
    claims: dict[str, object], refused: bool
) -> None:
    request = vonage_head(**claims)
    assert (check_head("vonage", SECRETS, request, NOW) is not None) is refused
    assert (verify("vonage", SECRETS, request, NOW) is not None) is refused


def test_a_form_of_too_many_fields_is_refused_and_not_signed_over() -> None:
    body = urlencode(FIELDS).encode() + b"&" + b"&".join([b"a="] * 20_000)
    started = time.perf_counter()
    refusal = verify("twilio", SECRETS, twilio_request(body=body), NOW)
    assert refusal is not None and "fields" in refusal
    assert time.perf_counter() - started < 1.0  # no sorting or hashing of 20,000 fields


def test_the_signature_check_and_the_normalizer_share_one_parse_of_the_form() -> None:
    request = twilio_request()
    assert verify("twilio", SECRETS, request, NOW) is None
    first = request.form()
    assert request.form() is first  # the same parse, kept by the request itself
    assert NORMALIZERS["twilio"](request)[0].provider_message_id == "SM1"


def test_nothing_of_a_request_is_kept_once_it_is_dropped() -> None:
    # given 70 refused Twilio forms of 60 KiB each, checked one after another
    def refuse_one(i: int) -> None:
        fields = {**FIELDS, "Body": f"{i}" + "x" * 60_000}
        request = twilio_request(FIELDS, urlencode(fields).encode())
        assert verify("twilio", SECRETS, request, NOW) is not None

    refuse_one(-1)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(70):
            refuse_one(i)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    # then none of their bodies or fields is held anywhere (a cache would hold megabytes)
    assert kept < 500_000


@given(host=st.text(max_size=40))
def test_no_host_makes_the_twilio_check_raise(host: str) -> None:
    url = f"http://{host}/v1/receipts/tw?relay_ref=x"
    request = RawRequest.build("POST", url, {"X-Twilio-Signature": "A" * 27 + "="}, b"a=b")
    assert verify("twilio", SECRETS, request, NOW) is not None


@given(text=st.text(st.sampled_from("ab=&+%2041éz;"), max_size=60))
def test_forms_are_parsed_as_the_standard_library_parses_them(text: str) -> None:
    assert form_pairs(text) == tuple(parse_qsl(text, keep_blank_values=True))
