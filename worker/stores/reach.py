"""What went wrong reaching Redis, in an operator's words: down (wait, or start it) is not the
same as a wrong password or a database that does not exist (fix the configuration).

A liveness probe may forgive an outage (workers ride it out) but never a configuration error:
a mistyped secret must not look like "Redis down, all fine".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import redis
from redis.exceptions import (
    InvalidResponse,
    MasterDownError,
    NoPermissionError,
    TryAgainError,
)
from redis.sentinel import MasterNotFoundError

from worker.settings import safe_url
from worker.stores.connection import CLI_PATIENCE, build_client, is_sentinel, parse_sentinel_url

Kind = Literal["authentication", "refused", "down"]


@dataclass(frozen=True, slots=True)
class RedisProblem:
    """Why Redis could not be used: its kind, and a message that says what to do."""

    kind: Kind
    """authentication (a missing or wrong password, or user), refused (Redis answered but
    will not do it: no such database, no permission), or down (no answer: an outage)."""
    message: str

    @property
    def outage(self) -> bool:
        """True when waiting may cure it; False for a configuration error."""
        return self.kind == "down"


def describe(exc: redis.RedisError, url: str) -> RedisProblem:
    """The problem behind `exc`, raised while using Redis at `url` (REDIS_URL)."""
    where = f"Redis at {safe_url(url)}"
    # redis-py's MasterNotFoundError quotes a page-long repr of each sentinel's client.
    detail = _sentinels_said(exc) if isinstance(exc, MasterNotFoundError) else _text(exc)
    if isinstance(exc, MasterNotFoundError) and any(m in str(exc) for m in _AUTH_MARKS):
        return RedisProblem(
            "authentication",
            f"the sentinels of {safe_url(url)}: authentication failed ({detail}): set "
            "RELAY_SENTINEL_PASSWORD to the sentinels' own password (their requirepass); the "
            "master's goes in REDIS_URL.",
        )
    if isinstance(exc, redis.AuthenticationError) or _says(exc, "NOAUTH", "WRONGPASS"):
        return RedisProblem(
            "authentication",
            f"{where}: authentication failed ({detail}): {_auth_hint(url, str(exc))}",
        )
    if isinstance(
        exc, redis.ConnectionError | redis.TimeoutError | MasterDownError | TryAgainError
    ):
        return RedisProblem(
            "down",
            f"cannot reach {where} ({detail}): is Redis running there, and are "
            "REDIS_URL's host and port right?",
        )
    if isinstance(exc, InvalidResponse):
        return RedisProblem(
            "refused",
            f"what answers at {safe_url(url)} does not speak Redis ({detail}): check "
            "REDIS_URL's port.",
        )
    if isinstance(exc, NoPermissionError):
        return RedisProblem(
            "refused",
            f"{where} refused a command ({detail}): REDIS_URL's user lacks a permission "
            "the relay needs.",
        )
    return RedisProblem("refused", f"{where} refused ({detail}): check REDIS_URL.")


def probe(url: str) -> RedisProblem | None:
    """PING `url` once with a short patience: None when it answers, else the problem."""
    client = build_client(url, patience=CLI_PATIENCE)
    try:
        client.ping()
    except redis.RedisError as exc:
        return describe(exc, url)
    finally:
        client.close()
    return None


# What redis-py's MasterNotFoundError quotes of a sentinel that refused to answer for lack of
# a password (it collects each sentinel's error, then says only that no master was found).
_AUTH_MARKS = ("AuthenticationError", "NOAUTH", "WRONGPASS", "invalid username-password")


def _sentinels_said(exc: Exception) -> str:
    """What each sentinel answered, without redis-py's page-long repr of each client."""
    said = sorted(set(re.findall(r" - ([\w:.]+)", str(exc))))
    return f"no master found; the sentinels: {', '.join(said) or '-'}"


def _text(exc: Exception) -> str:
    return str(exc).strip().rstrip(".")


def _says(exc: Exception, *codes: str) -> bool:
    return str(exc).startswith(codes)


def _auth_hint(url: str, text: str) -> str:
    """What to fix, depending on whether REDIS_URL gives a password at all."""
    if is_sentinel(url):
        given = parse_sentinel_url(url).password is not None
        place = "the first sentinel:// address of REDIS_URL (the master's password)"
    else:
        given = urlsplit(url).password is not None
        place = "REDIS_URL"
    if "without any password configured" in text or "no password is set" in text:
        return f"this Redis has no password, and {place} gives one: remove it from there."
    if not given:
        return (
            f"Redis asks for a password, and {place} gives none. Write it as "
            "redis://:PASSWORD@HOST:PORT/DB (or redis://USER:PASSWORD@... for an ACL user)."
        )
    return (
        f"Redis refused the password (or user) in {place}. Check it against Redis's "
        "requirepass or ACL user; a password with special characters must be URL-encoded."
    )
