"""Writing what the CLI shows: text that any terminal can take, with personal data masked.

Dead letters hold what producers sent, which may include newlines, control characters, text
that is not valid Unicode, and recipients' phone numbers: the human-readable views escape the
first and mask the last; `--json` keeps the record whole (escaped where it must be).
"""

from __future__ import annotations

import json
from typing import Any

from worker.observe.logs import one_line
from worker.observe.masking import mask_fields, mask_text


def printable(value: object, width: int | None = None) -> str:
    """`value` as one line of text: control characters and lone surrogates escaped."""
    text = one_line("-" if value is None else str(value))
    return text if width is None else text[:width]


def masked(value: object, width: int | None = None) -> str:
    """Free text (an error, a raw line) as one printable line with phone numbers and
    addresses masked."""
    return mask_text(printable(value, width))


def json_text(value: Any, indent: int | None = 2) -> str:
    """JSON for output: UTF-8 where it can be, ASCII-escaped where the text is not valid."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=indent)
    return text


def masked_event(event: Any) -> str:
    """An event for human eyes: recipients masked, other text masked where it looks like a
    phone number or an address, numbers (times, codes) as they are; a raw line as masked
    text."""
    if not isinstance(event, dict):
        return masked(event)
    return json_text(mask_fields(event), indent=None)
