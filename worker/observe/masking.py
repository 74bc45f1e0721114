"""Masking of personal data (recipients' phone numbers and addresses) for human eyes."""

from __future__ import annotations


def mask(value: object) -> str:
    """Keep just enough of a recipient to tell two apart: '+4915112345678' -> '+4*********78'."""
    text = "" if value is None else str(value)
    if "@" in text:
        user, _, domain = text.partition("@")
        return f"{user[:1]}***@{domain}"
    if len(text) <= 6:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]
