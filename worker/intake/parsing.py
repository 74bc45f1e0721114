"""Reading one producer's item (a JSON text): the event in it, or why it cannot be queued.

The same rules for every way in: a line of `relay push`, an item RPUSHed onto the inbox. What
cannot be read becomes an `invalid` dead letter that keeps the text (or, when it is too big, a
prefix of it), so a producer's mistake is never dropped silently, and never stops the reader.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetter, DeadLetterStore

_ORJSON_REFUSED = object()
KEEP_OF_OVERSIZED = 1024  # bytes of an oversized item kept so a person can tell what it was
MAX_DEPTH = 16
"""Nesting an item may have: an event has 3 levels. Deeper JSON parses, then fails wherever it
is serialized again (Python's recursion limit), so it is refused here, while it is still text."""
OVERSIZED = b"\x00relay-oversized:"
"""What the feeder's move script leaves in place of an item over the size limit, followed by
the item's size, ':' and its first KEEP_OF_OVERSIZED bytes (a NUL never starts JSON text)."""
WRAP = b"\x01r:"
"""What a lane's items start with: this, the item's id, a newline, then the item as pushed
(or its OVERSIZED marker). A producer's JSON never starts with a control character."""


def unwrap(item: bytes) -> tuple[str | None, bytes]:
    """A lane's item as (its id, the item as pushed); (None, item) for one never wrapped."""
    if item.startswith(WRAP):
        head, sep, rest = item[len(WRAP) :].partition(b"\n")
        if sep and head.isdigit():
            return head.decode(), rest
    return None, item


def parse_item(raw: bytes, limit: int, what: str) -> tuple[str | None, Any]:
    """The event in a producer's item, or (why not, what of it to keep as a dead letter)."""
    if raw.startswith(OVERSIZED):
        size, _, prefix = raw[len(OVERSIZED) :].partition(b":")
        if size.isdigit() and len(size) < 12:
            return _oversized(what, int(size), limit, prefix)
    if len(raw) > limit:
        return _oversized(what, len(raw), limit, raw[:KEEP_OF_OVERSIZED])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        problem = f"{what} is not UTF-8 text (byte 0x{bad} at position {exc.start}); not queued"
        return problem, raw.decode("utf-8", "backslashreplace")
    return parse_text(text, what)


def parse_text(text: str, what: str) -> tuple[str | None, Any]:
    """The event in a JSON text (already within the size limit), or (why not, the text)."""
    too_deep = False
    try:
        value = orjson.loads(text)  # the common case, fast; what it refuses, json explains
    except orjson.JSONDecodeError:
        value = _ORJSON_REFUSED
    try:
        value = json.loads(text) if value is _ORJSON_REFUSED else value
    except ValueError as exc:
        return f"{what} is not JSON: {exc}", text.rstrip("\n")
    except RecursionError:
        too_deep, value = True, None
    # Fewer brackets than the limit cannot nest past it: the walk is for the odd few.
    if too_deep or (
        text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH)
    ):
        problem = f"{what} is nested more than {MAX_DEPTH} levels deep: not an event"
        return problem, text[:KEEP_OF_OVERSIZED]
    return None, value


def _oversized(what: str, size: int, limit: int, prefix: bytes) -> tuple[str, str]:
    kept = prefix.decode("utf-8", "replace") + f"… [{size - len(prefix)} more bytes not kept]"
    problem = f"{what} is {size} bytes, over the {limit}-byte limit (RELAY_MAX_EVENT_BYTES)"
    return problem + "; not queued", kept


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON `value` nests more than `limit` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def store_invalid(
    problem: str, kept: Any, store: DeadLetterStore | None = None, counters: Counters | None = None
) -> None:
    """Keep what could not be queued as an `invalid` dead letter, and count it."""
    (store or DeadLetterStore()).add(DeadLetter(reason="invalid", error=problem, event=kept))
    (counters or Counters()).incr(None, "dead:invalid")
