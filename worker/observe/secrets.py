"""Every secret this process knows, and the one place that takes them out of text leaving it.

Secrets come from the settings (`secret=True`: the Redis URL's passwords, the sentinels'
password, the ingress token, the Sentry DSN), the targets file (targets' and sources' secrets)
and what the process fetches at run time (access tokens). Whatever text reaches a Sentry
event, a target's answer kept in a dead letter or shown in Flower, or a token endpoint's error,
passes `KNOWN.redact` first: a target or token endpoint that echoes a request back (some echo
the Authorization header in their error pages) must not carry a secret into them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import fields
from typing import TYPE_CHECKING

from worker.settings.spec import url_secrets

if TYPE_CHECKING:
    from worker.config import RelayConfig
    from worker.settings import Settings

FILTERED = "[Filtered]"
MIN_LENGTH = 4
"""Shorter values are not searched for: replacing every "ab" would wreck the text, and a
secret that short protects nothing."""
RECENT = 64
"""Fetched tokens remembered (they rotate: the latest few are the ones that can leak)."""


class KnownSecrets:
    """A thread-safe set of secrets: fixed ones (configuration) and the latest fetched ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fixed: set[str] = set()
        self._recent: deque[str] = deque(maxlen=RECENT)
        self._ordered: tuple[str, ...] = ()
        self._ordered_bytes: tuple[bytes, ...] = ()
        self._also_bytes: dict[tuple[str, ...], tuple[bytes, ...]] = {}

    def add(self, values: Iterable[str]) -> None:
        """Remember configured secrets for the life of the process."""
        with self._lock:
            self._fixed.update(v for v in values if len(v) >= MIN_LENGTH)
            self._reorder()

    def remember(self, value: str) -> None:
        """Remember a fetched secret (an access token), among the latest RECENT."""
        if len(value) < MIN_LENGTH:
            return
        with self._lock:
            if value not in self._recent:
                self._recent.append(value)
                self._reorder()

    def _reorder(self) -> None:
        # Longest first: a secret that contains another is removed whole.
        self._ordered = tuple(sorted(self._fixed | set(self._recent), key=len, reverse=True))
        self._ordered_bytes = tuple(_utf8(s) for s in self._ordered)

    def values(self) -> tuple[str, ...]:
        return self._ordered

    def redact(self, text: str, also: Iterable[str] = ()) -> str:
        """`text` with every known secret (and each of `also`) replaced by FILTERED."""
        for secret in (*self._ordered, *_longest_first(also)):
            if secret in text:
                text = text.replace(secret, FILTERED)
        return text

    def redact_bytes(self, data: bytes, also: tuple[str, ...] = ()) -> bytes:
        """The same for bytes (a target's answer), compared as UTF-8. Called for every answer:
        the known secrets are kept encoded, and so are the last few sets of `also` (a
        target's credentials, the same for thousands of answers); a secret absent costs one
        search."""
        extra = self._also_bytes.get(also)
        if extra is None:
            if len(self._also_bytes) >= RECENT:
                self._also_bytes.clear()
            extra = self._also_bytes[also] = tuple(_utf8(s) for s in _longest_first(also))
        for secret in (*self._ordered_bytes, *extra):
            if secret in data:
                data = data.replace(secret, _FILTERED_BYTES)
        return data


def _longest_first(values: Iterable[str]) -> list[str]:
    return sorted((v for v in values if len(v) >= MIN_LENGTH), key=len, reverse=True)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


_FILTERED_BYTES = FILTERED.encode()
KNOWN = KnownSecrets()
"""This process's secrets."""


def process_secrets(settings: Settings, config: RelayConfig | None = None) -> set[str]:
    """Every secret in `settings` (each field declared `secret=True`, and the passwords inside
    those that are URLs) and in `config` (a `RelayConfig`: targets' and sources' secrets)."""
    found: set[str] = set()
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.metadata["spec"].secret and isinstance(value, str) and value:
            found.add(value)
            found |= url_secrets(value)
    if config is not None:
        found |= set(config.secrets)
        for source in config.sources.values():
            found |= {v for k, v in source.secrets.items() if k != "public_url"}
    return found


def learn(settings: Settings, config: RelayConfig | None = None) -> set[str]:
    """Add the secrets of `settings` and `config` to KNOWN; return them."""
    found = process_secrets(settings, config)
    KNOWN.add(found)
    return found
