"""Sentry: one event per dead letter, unexpected errors, and nothing personal or secret.

Enabled when SENTRY_DSN is set. Every event passes `Scrubber` before it leaves the process:
every secret the process knows (`worker.observe.secrets.KNOWN`: settings, targets, sources, URL
passwords, fetched tokens) and Authorization headers are filtered, recipients (phone numbers and
e-mail addresses) are masked, and Celery task arguments (which hold whole events) are dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration

from worker.observe.masking import mask, mask_text
from worker.observe.secrets import FILTERED, KNOWN, KnownSecrets

__all__ = ["FILTERED", "Scrubber", "init_sentry", "report_dead_letter"]
_PERSONAL_KEYS = {"recipient", "from", "subject", "sender", "sender_id"}
_SECRET_KEYS = {"authorization", "token", "secret", "client_secret", "password", "x-hub-signature"}


class Letter(Protocol):
    """What Sentry is told of a dead letter (`worker.stores.deadletters.DeadLetter` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def target(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def error(self) -> str: ...


class Scrubber:
    """A Sentry `before_send` that removes secrets and masks personal data, recursively:
    the secrets `known` holds when the event is sent (fetched tokens included), and `secrets`."""

    def __init__(self, secrets: Iterable[str] = (), known: KnownSecrets = KNOWN) -> None:
        self.secrets = tuple(secrets)
        self.known = known

    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        extra = event.get("extra")
        if isinstance(extra, dict) and isinstance(extra.get("celery-job"), dict):
            job = extra["celery-job"]
            job["args"], job["kwargs"] = FILTERED, FILTERED
        cleaned: dict[str, Any] = self.clean(event)
        return cleaned

    def clean(self, value: Any, key: str = "") -> Any:
        lowered = key.lower()
        if lowered in _SECRET_KEYS:
            return FILTERED
        if isinstance(value, dict):
            return {k: self.clean(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.clean(v, key) for v in value]
        if isinstance(value, str):
            if lowered in _PERSONAL_KEYS:
                return mask(value)
            return mask_text(self.known.redact(value, self.secrets))
        return value


def init_sentry(dsn: str | None, secrets: Iterable[str]) -> bool:
    """Start the Sentry SDK with the Celery integration; False when no DSN is configured.
    `secrets` (`worker.observe.secrets.process_secrets`: every secret of the settings and the
    targets file) join the known secrets whether or not Sentry is on: answers are cleaned too."""
    KNOWN.add(secrets)
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        integrations=[CeleryIntegration()],
        send_default_pii=False,
        before_send=Scrubber(),  # type: ignore[arg-type]
        traces_sample_rate=0.0,
        max_request_body_size="never",
        include_local_variables=False,
    )
    return True


class _Budget:
    """At most `per_minute` reports per (target, reason) a minute in this process, so that an
    outage that dead-letters ten thousand events sends a handful of Sentry events, not ten
    thousand; how many were held back is told with the next one that goes."""

    def __init__(self, per_minute: int = 10) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._window: dict[tuple[str, str], tuple[float, int, int]] = {}

    def take(self, group: tuple[str, str], now: float) -> int | None:
        """None when this report is held back, else how many were held back before it."""
        with self._lock:
            start, sent, held = self._window.get(group, (now, 0, 0))
            if now - start >= 60:
                start, sent = now, 0
            if sent >= self.per_minute:
                self._window[group] = (start, sent, held + 1)
                return None
            self._window[group] = (start, sent + 1, 0)
            return held


_BUDGET = _Budget()


def report_dead_letter(letter: Letter, label: str | None) -> None:
    """One Sentry event per dead letter (within a budget per minute), grouped by target and
    reason (no-op without Sentry). `label` is the target as counted: configured or unknown."""
    if not sentry_sdk.is_initialized():
        return
    group = (label or "-", letter.reason)
    held = _BUDGET.take(group, time.monotonic())
    if held is None:
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("target", group[0])
        scope.set_tag("reason", letter.reason)
        scope.set_tag("status_code", str(letter.status_code or "-"))
        scope.fingerprint = ["relay-dead-letter", group[0], letter.reason]
        scope.set_context(
            "dead_letter",
            {
                "id": letter.id,
                "event_id": letter.event_id,
                "attempts": letter.attempts,
                "error": letter.error,
                "similar_not_reported_in_the_last_minute": held,
            },
        )
        sentry_sdk.capture_message(
            f"dead letter ({letter.reason}) for target {group[0]}: {letter.error}",
            level="error",
        )
