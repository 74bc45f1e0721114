"""Authentication of providers' callbacks over the raw bytes, before anything is parsed.

Each kind's check takes the source's secrets and the request and answers None when the request
is authentic, else why not (for the log: never the body, never a secret). Every comparison of
a signature or token is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import jwt

from tasks.upstream.request import RawRequest, form_pairs

VONAGE_MAX_AGE = 300.0  # seconds a Vonage JWT's `iat` may lie from now (either way)
_TWILIO_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

Check = Callable[[Mapping[str, str], RawRequest, float], str | None]


def _same(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def twilio_url(request: RawRequest, public_url: str | None) -> str:
    """The URL Twilio signed: `public_url` (scheme, host and path, behind a proxy) with the
    request's own query string, else the URL as received."""
    if not public_url:
        return request.url
    query = request.url.partition("?")[2]
    return public_url.partition("?")[0] + ("?" + query if query else "")


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if not parts.port:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition(":")[0]))


def twilio_signature(token: str, url: str, params: list[tuple[str, str]], algorithm: str) -> str:
    """Base64(HMAC(auth token, url + each name and value, sorted by name then value))."""
    values: dict[str, set[str]] = {}
    for name, value in params:  # grouped once: a body of many fields costs linear time
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + v for name in sorted(values) for v in sorted(values[name]))
    digest = hmac.new(token.encode(), data.encode(), _TWILIO_HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode()


def _twilio_algorithm(settings: str | None) -> str | None:
    """HMAC_SHA1 unless X-Twilio-Webhooks-Signature-Settings names another (None: unknown)."""
    for part in (settings or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper() if value.strip().upper() in _TWILIO_HASHES else None
    return "HMAC_SHA1"


def check_twilio(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """X-Twilio-Signature over the URL (with and without its default port) and POST fields."""
    signature = request.header("x-twilio-signature")
    if not signature:
        return "no X-Twilio-Signature header"
    algorithm = _twilio_algorithm(request.header("x-twilio-webhooks-signature-settings"))
    if algorithm is None:
        return "unsupported signature algorithm"
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return "the signed body is not UTF-8 form data"
    params = list(form_pairs(body)) if request.method == "POST" else []
    url = twilio_url(request, secrets.get("public_url"))
    # As received first; the SDK accepts the URL with and without its default port too.
    for variant in (str, _without_port, _with_port):
        computed = twilio_signature(secrets["auth_token"], variant(url), params, algorithm)
        if _same(computed, signature.strip()):
            return None
    return "X-Twilio-Signature does not match"


def meta_signature(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value for `body`: 'sha256=' and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def check_whatsapp(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """X-Hub-Signature-256 over the raw body."""
    given = request.header("x-hub-signature-256")
    if not given:
        return "no X-Hub-Signature-256 header"
    expected = meta_signature(secrets["app_secret"], request.body)
    return None if _same(expected, given.strip().lower()) else "X-Hub-Signature-256 does not match"


def check_vonage(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """A Bearer JWT (HS256, the signature secret) whose payload_hash is the body's SHA-256 and
    whose iat is recent."""
    scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "no Bearer token in Authorization"
    try:
        claims = jwt.decode(
            token.strip(),
            secrets["signature_secret"],
            algorithms=["HS256"],
            options={"require": ["iat"], "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        return f"the JWT is not valid ({type(exc).__name__})"
    digest = hashlib.sha256(request.body).hexdigest()
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str) or not _same(digest, claimed.lower()):
        return "payload_hash does not match the body"
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or abs(now - float(iat)) > VONAGE_MAX_AGE:
        return f"the JWT's iat is more than {VONAGE_MAX_AGE:g} s from now"
    return None


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


CHECKS: dict[str, Check] = {
    "twilio": check_twilio,
    "whatsapp": check_whatsapp,
    "vonage": check_vonage,
    "infobip": check_token,
    "smpp_dlr": check_token,
}
"""Each provider kind's check, by kind."""

# The secrets each kind's check needs (the configuration requires them).
SECRETS: dict[str, tuple[str, ...]] = {
    "twilio": ("auth_token",),
    "whatsapp": ("app_secret", "verify_token"),
    "vonage": ("signature_secret",),
    "infobip": ("token",),
    "smpp_dlr": ("token",),
}


def verify(kind: str, secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """None when `request` is authentic for a source of `kind`, else why not."""
    return CHECKS[kind](secrets, request, now)


def whatsapp_handshake(verify_token: str, request: RawRequest) -> str | None:
    """Meta's subscription handshake: the `hub.challenge` to answer when mode and token match,
    else None (answer 403)."""
    mode, token = request.query_value("hub.mode"), request.query_value("hub.verify_token")
    challenge = request.query_value("hub.challenge")
    if mode != "subscribe" or token is None or challenge is None:
        return None
    return challenge if _same(token.encode(), verify_token.encode()) else None
