"""Twilio's X-Twilio-Signature: Base64(HMAC(auth token, URL + the POST fields sorted)), in two
steps: what the head shows (a signature of the algorithm's size) before the body is read, then
the HMAC over the URL and the body's fields, once per URL variant and only as far as needed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

from tasks.upstream.receipts import Unreadable
from tasks.upstream.request import RawRequest

HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}


def twilio_url(request: RawRequest, public_url: str | None) -> str:
    """The URL Twilio signed: `public_url` (scheme, host and path, behind a proxy) with the
    request's own query string, else the URL as received."""
    if not public_url:
        return request.url
    query = request.url.partition("?")[2]
    return public_url.partition("?")[0] + ("?" + query if query else "")


def _with_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.port:
            return url
    except ValueError:  # a port or host Python cannot read: no other variant of it
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _without_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        if not parts.port:
            return url
    except ValueError:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition(":")[0]))


def _variants(url: str) -> Iterator[str]:
    """The URL as received, then (the SDK accepts them too) without and with its default port;
    each once, each made only when the one before did not match."""
    seen: set[str] = set()
    for make in (str, _without_port, _with_port):
        variant = make(url)
        if variant not in seen:
            seen.add(variant)
            yield variant


def _fields_text(params: Iterable[tuple[str, str]]) -> bytes:
    """Each name and value, sorted by name then value, concatenated (grouped once: a body of
    many fields costs n log n, not a pass per field)."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    return "".join(name + v for name in sorted(values) for v in sorted(values[name])).encode()


def _sign(token: str, url: str, fields: bytes, algorithm: str) -> str:
    mac = hmac.new(token.encode(), url.encode(), HASHES[algorithm])
    mac.update(fields)
    return base64.b64encode(mac.digest()).decode()


def twilio_signature(token: str, url: str, params: list[tuple[str, str]], algorithm: str) -> str:
    """Base64(HMAC(auth token, url + each name and value, sorted by name then value))."""
    return _sign(token, url, _fields_text(params), algorithm)


def _algorithm(settings: str | None) -> str | None:
    """HMAC_SHA1 unless X-Twilio-Webhooks-Signature-Settings names another (None: unknown)."""
    for part in (settings or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper() if value.strip().upper() in HASHES else None
    return "HMAC_SHA1"


def _signature(request: RawRequest) -> tuple[str, str] | str:
    """The signature and its algorithm, or why the head cannot carry one."""
    signature = (request.header("x-twilio-signature") or "").strip()
    if not signature:
        return "no X-Twilio-Signature header"
    algorithm = _algorithm(request.header("x-twilio-webhooks-signature-settings"))
    if algorithm is None:
        return "unsupported signature algorithm"
    return signature, algorithm


def check_head(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """A signature header of a known algorithm, base64 of its digest's size (no body needed)."""
    found = _signature(request)
    if isinstance(found, str):
        return found
    signature, algorithm = found
    try:
        size = len(base64.b64decode(signature, validate=True))
    except (binascii.Error, ValueError):
        size = -1
    if size != HASHES[algorithm]().digest_size:
        return "X-Twilio-Signature is not a signature (base64 of the digest's size)"
    return None


def check_body(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """The signature over the URL (as received, then without and with its default port) and
    the POST fields (parsed once, for the normalizer too; bounded in number)."""
    found = _signature(request)
    if isinstance(found, str):
        return found
    signature, algorithm = found
    try:
        params = request.form() if request.method == "POST" else ()
    except Unreadable:
        return f"the signed body is not UTF-8 form data of at most {request.max_fields} fields"
    fields = _fields_text(params)
    for url in _variants(twilio_url(request, secrets.get("public_url"))):
        computed = _sign(secrets["auth_token"], url, fields, algorithm)
        if hmac.compare_digest(computed.encode(), signature.encode()):
            return None
    return "X-Twilio-Signature does not match"
