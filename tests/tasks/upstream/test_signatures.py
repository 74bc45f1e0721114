"""Authentication over the raw bytes: each provider's own recipe, Twilio's SDK as the oracle."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

import jwt
import pytest
from twilio.request_validator import RequestValidator

from tasks.upstream.request import RawRequest
from tasks.upstream.signatures import verify, whatsapp_handshake

TOKEN = "twilio-auth-token-0123456789abcdef"
SECRET = "a-signature-secret-of-32-bytes-at-least!"
FIELDS = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15551234567", "Body": "é ü"}
NOW = time.time()


def twilio_request(
    url: str, signed_url: str | None = None, fields: dict[str, str] = FIELDS
) -> RawRequest:
    signature = RequestValidator(TOKEN).compute_signature(signed_url or url, fields)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return RawRequest.build("POST", url, headers, urlencode(fields).encode())


@pytest.mark.parametrize(
    ("received", "signed"),
    [
        ("https://relay.example.com/v1/receipts/tw", None),
        ("https://relay.example.com/v1/receipts/tw?relay_ref=%7B%7D&x=1", None),
        (
            "https://relay.example.com/v1/receipts/tw",
            "https://relay.example.com:443/v1/receipts/tw",
        ),
        (
            "https://relay.example.com:443/v1/receipts/tw",
            "https://relay.example.com/v1/receipts/tw",
        ),
        ("http://127.0.0.1:8080/v1/receipts/tw", None),
    ],
)
def test_twilio_requests_the_sdk_validates_are_accepted(received: str, signed: str | None) -> None:
    request = twilio_request(received, signed)
    oracle = RequestValidator(TOKEN).validate(
        received, FIELDS, request.header("x-twilio-signature")
    )
    assert oracle
    assert verify("twilio", {"auth_token": TOKEN}, request, NOW) is None


def test_twilio_behind_a_proxy_is_checked_against_public_url_with_the_requests_query() -> None:
    public = "https://hooks.example.com/relay/tw"
    request = twilio_request(
        "http://10.0.0.5:8080/v1/receipts/tw?relay_ref=abc", public + "?relay_ref=abc"
    )
    secrets = {"auth_token": TOKEN, "public_url": public}
    assert verify("twilio", secrets, request, NOW) is None
    assert verify("twilio", {"auth_token": TOKEN}, request, NOW) is not None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: RawRequest(r.method, r.url, r.headers, r.query, r.body + b"&ErrorCode=1"),
        lambda r: RawRequest(r.method, r.url, r.headers, r.query, r.body[:-3]),  # truncated
        lambda r: RawRequest(r.method, r.url + "x", r.headers, r.query, r.body),
        lambda r: RawRequest(r.method, r.url, (), r.query, r.body),
        lambda r: RawRequest(r.method, r.url, (("x-twilio-signature", "AAAA"),), r.query, r.body),
    ],
)
def test_twilio_requests_the_sdk_refuses_are_refused(tamper: object) -> None:
    request = tamper(twilio_request("https://relay.example.com/v1/receipts/tw"))  # type: ignore[operator]
    fields = dict(__import__("urllib.parse").parse.parse_qsl(request.body.decode()))
    assert not RequestValidator(TOKEN).validate(
        request.url, fields, request.header("x-twilio-signature") or ""
    )
    assert verify("twilio", {"auth_token": TOKEN}, request, NOW) is not None


def test_twilio_shared_key_sha256_signatures_are_accepted() -> None:
    url = "https://relay.example.com/v1/receipts/tw"
    signature = RequestValidator(TOKEN).compute_signature(url, FIELDS, "HMAC_SHA256")
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
    }
    request = RawRequest.build("POST", url, headers, urlencode(FIELDS).encode())
    assert verify("twilio", {"auth_token": TOKEN}, request, NOW) is None


def meta_request(body: bytes, secret: str = SECRET) -> RawRequest:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return RawRequest.build(
        "POST", "https://r/v1/receipts/wa", {"X-Hub-Signature-256": f"sha256={digest}"}, body
    )


def test_meta_signatures_are_over_the_raw_bytes() -> None:
    body = b'{"object":"whatsapp_business_account", "entry": []}'
    secrets = {"app_secret": SECRET, "verify_token": "v"}
    assert verify("whatsapp", secrets, meta_request(body), NOW) is None
    signed = meta_request(body)
    reformatted = RawRequest(
        signed.method, signed.url, signed.headers, (), body.replace(b", ", b",")
    )
    assert verify("whatsapp", secrets, reformatted, NOW) == "X-Hub-Signature-256 does not match"
    assert verify("whatsapp", secrets, meta_request(body, "other-secret"), NOW) is not None


def test_the_meta_handshake_echoes_the_challenge_only_for_the_verify_token() -> None:
    url = "https://r/v1/receipts/wa?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1158201444"
    assert whatsapp_handshake("vt", RawRequest.build("GET", url.format("vt"))) == "1158201444"
    assert whatsapp_handshake("vt", RawRequest.build("GET", url.format("no"))) is None


def vonage_request(
    body: bytes, issued: float = NOW, secret: str = SECRET, **claims: object
) -> RawRequest:
    token = jwt.encode(
        {
            "iat": int(issued),
            "jti": "j",
            "api_key": "k",
            "payload_hash": hashlib.sha256(body).hexdigest(),
            **claims,
        },
        secret,
        algorithm="HS256",
    )
    return RawRequest.build(
        "POST", "https://r/v1/receipts/vg", {"Authorization": f"Bearer {token}"}, body
    )


@pytest.mark.parametrize(
    ("request_", "accepted"),
    [
        (vonage_request(b'{"status":"delivered"}'), True),
        (
            vonage_request(b'{"status":"delivered"}', secret="another-secret-of-32-bytes-at-least"),
            False,
        ),
        (vonage_request(b'{"status":"delivered"}', payload_hash="0" * 64), False),
        (vonage_request(b'{"status":"delivered"}', issued=NOW - 3600), False),
        (
            RawRequest.build("POST", "https://r/", {"Authorization": "Bearer not.a.jwt"}, b"{}"),
            False,
        ),
        (RawRequest.build("POST", "https://r/", {}, b"{}"), False),
    ],
)
def test_vonage_jwts_are_checked_for_signature_body_hash_and_freshness(
    request_: RawRequest, accepted: bool
) -> None:
    assert (verify("vonage", {"signature_secret": SECRET}, request_, NOW) is None) is accepted


def test_a_vonage_jwt_over_a_truncated_body_is_refused() -> None:
    signed = vonage_request(b'{"status":"delivered","to":"4477"}')
    truncated = RawRequest(signed.method, signed.url, signed.headers, (), signed.body[:-5])
    assert (
        verify("vonage", {"signature_secret": SECRET}, truncated, NOW)
        == "payload_hash does not match the body"
    )


@pytest.mark.parametrize(
    ("headers", "url", "accepted"),
    [
        ({"Authorization": "Basic " + base64.b64encode(b"any:tok-1").decode()}, "https://r/", True),
        (
            {"Authorization": "Basic " + base64.b64encode(b"any:tok-2").decode()},
            "https://r/",
            False,
        ),
        ({"Authorization": "Basic !!!"}, "https://r/", False),
        ({}, "https://r/?token=tok-1", True),
        ({}, "https://r/?token=tok-12", False),
        ({}, "https://r/", False),
    ],
)
def test_token_sources_take_the_basic_password_or_the_token_parameter(
    headers: dict[str, str], url: str, accepted: bool
) -> None:
    request = RawRequest.build("POST", url, headers, b"x")
    for kind in ("infobip", "smpp_dlr"):
        assert (verify(kind, {"token": "tok-1"}, request, NOW) is None) is accepted
