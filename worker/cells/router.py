"""Which cell an event belongs to: a pure function anyone can compute, in any language.

The rule (docs/deploying/cells.md spells it out for other languages):

1. key = the first 8 bytes, big-endian, of SHA-256 over the UTF-8 bytes of
   `TARGET + "\\n" + FIRST_MESSAGE_ID` (a receipt's correlation: `SOURCE + "\\n" + PROVIDER_ID`);
2. cell = jump consistent hash (Lamping and Veach, 2014) of key over the number of cells, an
   index into RELAY_CELLS.

Jump hash needs nothing but the count: growing from n to n+1 cells moves 1/(n+1) of the
messages, all of them to the new cell, and none between old cells. RELAY_CELLS therefore only
ever grows at its end.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_MASK = (1 << 64) - 1
_STEP = 2862933555777941757  # the paper's 64-bit linear congruential multiplier


def jump(key: int, buckets: int) -> int:
    """Jump consistent hash: the bucket in [0, buckets) of a 64-bit `key`."""
    if buckets < 1:
        raise ValueError("at least one bucket")
    key &= _MASK
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * _STEP + 1) & _MASK
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def hash_key(first: str, second: str) -> int:
    """The 64-bit key of a pair: SHA-256 of `first + "\\n" + second`, its first 8 bytes."""
    text = f"{first}\n{second}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def cell_of(first: str, second: str, cells: int) -> int:
    """The cell of (target, first message id), or of (source, provider message id)."""
    return 0 if cells <= 1 else jump(hash_key(first, second), cells)


def routing_pair(event: Any) -> tuple[str, str] | None:
    """(target, first message id) of a decoded event; None when it has not got them."""
    if not isinstance(event, dict):
        return None
    target, mids = event.get("target"), event.get("message_ids")
    if isinstance(target, str) and isinstance(mids, list) and mids and isinstance(mids[0], str):
        return target, mids[0]
    return None


def event_cell(event: Any, cells: int) -> int:
    """The cell of a decoded event: by its target and first message id; an event without them
    (it will be refused as invalid) goes to the first cell, where its dead letter is kept."""
    pair = routing_pair(event) if cells > 1 else None
    return 0 if pair is None else cell_of(*pair, cells)


def text_cell(text: str | bytes, cells: int) -> int:
    """The cell of an event as JSON text (what `relay push` reads and producers RPUSH)."""
    if cells <= 1:
        return 0
    try:
        return event_cell(json.loads(text), cells)
    except (ValueError, RecursionError):
        return 0
