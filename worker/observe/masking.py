"""Masking of personal data (recipients' phone numbers and addresses) for human eyes."""

from __future__ import annotations

import re
from typing import Any

# E.164-like numbers and e-mail addresses anywhere in free text.
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# Inside an id only numbers written as phone numbers are (a leading +): a UUID's or a date's
# run of digits is not one, and an id masked by mistake can no longer be searched for.
_PLUS_PHONE = re.compile(r"\+\d[\d\s().-]{6,}\d")


def mask(value: object) -> str:
    """Keep just enough of a recipient to tell two apart: '+4915112345678' -> '+4*********78'."""
    text = "" if value is None else str(value)
    if "@" in text:
        user, _, domain = text.partition("@")
        return f"{user[:1]}***@{domain}"
    if len(text) <= 6:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]


def mask_text(text: str) -> str:
    """Mask phone numbers and e-mail addresses inside free text."""
    return _EMAIL.sub(lambda m: mask(m.group()), _PHONE.sub(lambda m: mask(m.group()), text))


def mask_id(text: str) -> str:
    """An id for human eyes: masked whole when it is a phone number (a recipient given as the
    id), else only its addresses and +-numbers; 'ev-42' and UUIDs stay as they are."""
    if _PHONE.fullmatch(text):
        return mask(text)
    return _EMAIL.sub(lambda m: mask(m.group()), _PLUS_PHONE.sub(lambda m: mask(m.group()), text))


def mask_fields(value: Any) -> Any:
    """A JSON value (an event) for human eyes: every `recipient` masked whatever its type, every
    other string masked as free text. Numbers stay as they are: in the contract a recipient is
    a string, and the numbers are times and codes (an epoch `occurred_at` read as a phone
    number was shown as 17******83)."""
    if isinstance(value, dict):
        return {
            k: mask(v) if k == "recipient" and v is not None else mask_fields(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_fields(v) for v in value]
    return mask_text(value) if isinstance(value, str) else value
