"""Vonage's signed webhooks: a Bearer JWT (HS256, the signature secret) whose `payload_hash` is
the body's SHA-256. The JWT is in the head, so its signature and times are checked before the
body is read; only the body's hash waits for the body."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from typing import Any

import jwt

from tasks.upstream.request import RawRequest

MAX_AGE = 300.0  # seconds a JWT's `iat` may lie from now (either way)
SKEW = 30.0  # seconds of clock difference allowed on `exp` and `nbf`
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _number(value: Any) -> float | None:
    """A finite number of seconds, or None (NaN, infinities, booleans and text are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _times(claims: dict[str, Any], now: float) -> str | None:
    """Why the JWT's times make it unusable now, or None: `iat` is required and recent (a NaN
    would compare as recent forever), `exp` and `nbf` hold when present."""
    for name in ("iat", "exp", "nbf"):
        if name in claims and _number(claims[name]) is None:
            return f"the JWT's {name} is not a finite number"
    iat = _number(claims.get("iat"))
    if iat is None or abs(now - iat) > MAX_AGE:
        return f"the JWT's iat is more than {MAX_AGE:g} s from now"
    exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf"))
    if exp is not None and exp <= now - SKEW:
        return "the JWT has expired"
    if nbf is not None and nbf > now + SKEW:
        return "the JWT is not valid yet"
    return None


def claims_of(secrets: Mapping[str, str], request: RawRequest, now: float) -> dict[str, Any] | str:
    """The JWT's claims when its signature, times and payload_hash's form hold; else why not."""
    scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "no Bearer token in Authorization"
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(),
            secrets["signature_secret"],
            algorithms=["HS256"],
            options={"verify_iat": False, "verify_exp": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        return f"the JWT is not valid ({type(exc).__name__})"
    problem = _times(claims, now)
    if problem is not None:
        return problem
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str) or not _SHA256_HEX.fullmatch(claimed):
        return "the JWT's payload_hash is not a SHA-256"
    return claims


def check_head(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """The JWT alone: signature, times, and a payload_hash of the right form."""
    found = claims_of(secrets, request, now)
    return found if isinstance(found, str) else None


def check_body(secrets: Mapping[str, str], request: RawRequest, now: float) -> str | None:
    """The JWT again (small, bounded by the head's size), and its payload_hash over the body."""
    found = claims_of(secrets, request, now)
    if isinstance(found, str):
        return found
    digest = hashlib.sha256(request.body).hexdigest()
    if not hmac.compare_digest(digest, found["payload_hash"].lower()):
        return "payload_hash does not match the body"
    return None
