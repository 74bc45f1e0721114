"""The retry schedule: exponential backoff with full jitter, Retry-After, attempts and age caps."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often an event is retried (the `[retry]` table of the config)."""

    base_delay: float = 2.0
    """Seconds before the first retry; the ceiling doubles with each attempt."""
    max_delay: float = 1800.0
    """Cap on one wait, Retry-After included."""
    max_attempts: int = 15
    """Attempts in all, the first one included."""
    max_age: float = 86400.0
    """Seconds since the relay first accepted the event; past it, no more retries."""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        # More digits than any sane wait would be: a year is enough to say "much later".
        return float(text) if len(text) <= 9 else float(365 * 86400)
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):  # an absurd date or zone
        return None


def backoff_delay(
    policy: RetryPolicy,
    attempts_done: int,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> float:
    """Full-jitter exponential delay after `attempts_done` attempts, at least any Retry-After."""
    # The exponent is capped so a huge attempt count cannot overflow a float.
    doubling = 2.0 ** min(max(0, attempts_done - 1), 100)
    ceiling = min(policy.max_delay, policy.base_delay * doubling)
    delay = (rand or random).uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_delay))
    return delay


def next_retry_delay(
    policy: RetryPolicy,
    attempts_done: int,
    first_seen: float,
    now: float,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt, or None when attempts or age are used up.

    A wait that would run past `max_age` is shortened to end at it, so the last attempt happens
    at the deadline instead of the event being given up early.
    """
    deadline = first_seen + policy.max_age
    if attempts_done >= policy.max_attempts or now >= deadline:
        return None
    delay = backoff_delay(policy, attempts_done, retry_after, rand)
    return min(delay, deadline - now)
