"""Reading one producer's item (a JSON text): the event in it, or why it cannot be queued.

The same rules for every way in: a line of `relay push`, an item RPUSHed onto the inbox. What
cannot be read becomes an `invalid` dead letter that keeps the text (or, when it is too big, a
prefix of it), so a producer's mistake is never dropped silently.
"""

from __future__ import annotations

import json
from typing import Any

from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore

KEEP_OF_OVERSIZED = 1024  # characters of an oversized item kept so a person can tell what it was


def parse_text(text: str, limit: int, what: str) -> tuple[str | None, Any]:
    """The event in a JSON text, or (why not, what of the text to keep as a dead letter)."""
    size = len(text.encode("utf-8", "replace"))
    if size > limit:
        kept = text[:KEEP_OF_OVERSIZED] + f"… [{size - KEEP_OF_OVERSIZED} more bytes not kept]"
        return (
            f"{what} is {size} bytes, over the {limit}-byte limit "
            "(RELAY_MAX_EVENT_BYTES); not queued"
        ), kept
    try:
        return None, json.loads(text)
    except ValueError as exc:
        return f"{what} is not JSON: {exc}", text.rstrip("\n")
    except RecursionError:
        return f"{what} is nested too deeply to be an event", text[:KEEP_OF_OVERSIZED]


def store_invalid(
    problem: str, kept: Any, store: DeadLetterStore | None = None, counters: Counters | None = None
) -> None:
    """Keep what could not be queued as an `invalid` dead letter, and count it."""
    (store or DeadLetterStore()).add(DeadLetter(reason="invalid", error=problem, event=kept))
    (counters or Counters()).incr(None, "dead:invalid")
