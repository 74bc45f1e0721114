"""Authentication of providers' callbacks over the raw bytes, before anything is parsed.

Each kind's check takes the source's secrets and the request and answers None when the request
is authentic, else why not (for the log: never the body, never a secret). It comes in two
steps: `check_head`, what the request line and headers alone can show (a token, a signature
header's presence and shape, a JWT), judged before the body is read, so that a caller without
credentials costs no body; then `check_body`, what needs the body (an HMAC over it). Every
comparison of a signature or token is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

from tasks.upstream import twilio_auth, vonage_auth
from tasks.upstream.request import RawRequest
from tasks.upstream.twilio_auth import twilio_signature, twilio_url

VONAGE_MAX_AGE = vonage_auth.MAX_AGE

Check = Callable[[Mapping[str, str], RawRequest, float], str | None]
_META = re.compile(r"sha256=[0-9a-f]{64}")


def _same(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def meta_signature(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value for `body`: 'sha256=' and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _meta_given(request: RawRequest) -> str | None:
    given = request.header("x-hub-signature-256")
    return given.strip().lower() if given else None


def meta_head(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """An X-Hub-Signature-256 header shaped like one: 'sha256=' and 64 hex digits."""
    given = _meta_given(request)
    if not given:
        return "no X-Hub-Signature-256 header"
    if not _META.fullmatch(given):
        return "X-Hub-Signature-256 is not a signature (sha256= and 64 hex digits)"
    return None


def meta_body(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """X-Hub-Signature-256 over the raw body."""
    refusal = meta_head(secrets, request, now)
    if refusal is not None:
        return refusal
    expected = meta_signature(secrets["app_secret"], request.body)
    return (
        None
        if _same(expected, _meta_given(request) or "")
        else "X-Hub-Signature-256 does not match"
    )


def check_token(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """The source's token as the HTTP Basic password, or as the `token` query parameter."""
    expected = secrets["token"]
    scheme, _, credentials = (request.header("authorization") or "").strip().partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return "the Basic credentials are not base64"
        password = decoded.partition(b":")[2]
        return None if _same(password, expected.encode()) else "wrong Basic password"
    given = request.query_value("token")
    if given is None:
        return "no Basic credentials and no token parameter"
    return None if _same(given.encode(), expected.encode()) else "wrong token"


def _nothing_more(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """The token kinds: the head said everything."""
    return None


HEAD_CHECKS: dict[str, Check] = {
    "twilio": twilio_auth.check_head,
    "whatsapp": meta_head,
    "vonage": vonage_auth.check_head,
    "infobip": check_token,
    "smpp_dlr": check_token,
}
"""What each kind's request line and headers show, before the body is read."""

BODY_CHECKS: dict[str, Check] = {
    "twilio": twilio_auth.check_body,
    "whatsapp": meta_body,
    "vonage": vonage_auth.check_body,
    "infobip": _nothing_more,
    "smpp_dlr": _nothing_more,
}
"""The rest of each kind's check, over the body (after the head check passed)."""

# The secrets each kind's check needs (the configuration requires them).
SECRETS: dict[str, tuple[str, ...]] = {
    "twilio": ("auth_token",),
    "whatsapp": ("app_secret", "verify_token"),
    "vonage": ("signature_secret",),
    "infobip": ("token",),
    "smpp_dlr": ("token",),
}


def check_head(
    kind: str, secrets: Mapping[str, str], request: RawRequest, now: float
) -> str | None:
    """None when nothing in the request's head refuses it, else why (the body is not needed)."""
    return HEAD_CHECKS[kind](secrets, request, now)


def check_body(
    kind: str, secrets: Mapping[str, str], request: RawRequest, now: float
) -> str | None:
    """None when the body is what the head's signature signed, else why."""
    return BODY_CHECKS[kind](secrets, request, now)


def verify(kind: str, secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """None when `request` is authentic for a source of `kind`, else why not."""
    return check_head(kind, secrets, request, now) or check_body(kind, secrets, request, now)


def whatsapp_handshake(verify_token: str, request: RawRequest) -> str | None:
    """Meta's subscription handshake: the `hub.challenge` to answer when mode and token match,
    else None (answer 403)."""
    mode, token = request.query_value("hub.mode"), request.query_value("hub.verify_token")
    challenge = request.query_value("hub.challenge")
    if mode != "subscribe" or token is None or challenge is None:
        return None
    return challenge if _same(token.encode(), verify_token.encode()) else None


__all__ = [
    "SECRETS",
    "VONAGE_MAX_AGE",
    "check_body",
    "check_head",
    "meta_signature",
    "twilio_signature",
    "twilio_url",
    "verify",
    "whatsapp_handshake",
]
