"""Text for pages a person reads (Flower, and whatever else is built from its API): one line,
phone numbers and addresses masked, and no character that means markup.

Flower 2.2 escapes what it shows, but its API hands the same text to any page built on it; an
event id that holds `<script>` must read as text wherever it lands, so `<`, `>` and `&` are
written as escapes (`\\x3c`), in the same form as control characters are (`\\n`)."""

from __future__ import annotations

from worker.observe.logs import one_line
from worker.observe.masking import mask_id, mask_text

_MARKUP = str.maketrans({"<": "\\x3c", ">": "\\x3e", "&": "\\x26"})


def shown(text: str) -> str:
    """Free text (a summary, a target's answer, a field of an invalid event) to show."""
    return mask_text(one_line(text)).translate(_MARKUP)


def shown_id(text: str) -> str:
    """An id (an event id) to show: masked only where it names a person (see `mask_id`)."""
    return mask_id(one_line(text)).translate(_MARKUP)
