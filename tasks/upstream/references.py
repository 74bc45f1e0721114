"""Echoed references: what the sending side asks a provider to echo with every receipt, its
signed form, and whether a source may use one.

Wire form: the correlation as compact JSON, `{"target"?, "message_ids", "channel",
"conversation_id"?, "recipient"?}`, optionally followed by a dot and a signature: the unpadded
base64url HMAC-SHA256 of the JSON text's UTF-8 bytes under the source's `reference_key` (43
characters). The JSON is signed exactly as it is sent, so a sender in any language makes one
without canonicalizing JSON: `text + "." + b64url(hmac_sha256(key, text))`.

A reference may route a receipt only to one of its source's own targets, and, when the source
has a `reference_key`, only with a valid signature; a record, when there is one, wins anyway
(the caller looks it up).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from tasks.upstream.correlation import BadCorrelation, Correlation, TooManyIds, correlation_of

MAX_REFERENCE = 4096  # characters, signature included: more is no reference of ours
FIELDS = frozenset({"target", "message_ids", "channel", "conversation_id", "recipient"})
Signature = Literal["valid", "invalid", "absent", "unchecked"]


class Reference(NamedTuple):
    """A reference read: where it says the receipt goes, and what its signature proved."""

    correlation: Correlation
    signature: Signature


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a source may do with a receipt's reference: route by it (`correlation`), or not
    (None: the receipt needs a record); `forbidden` says why a reference was refused."""

    correlation: Correlation | None = None
    forbidden: str | None = None


NO_ROUTE = Verdict()


def _key(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def _mac(text: str, key: str | bytes) -> str:
    digest = hmac.new(_key(key), text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_reference(reference: Mapping[str, Any] | str, key: str | bytes) -> str:
    """The signed reference for the sending side to hand the provider: `reference` (a mapping,
    written as compact JSON, or a JSON text, signed as given), a dot, its signature under `key`.
    `BadCorrelation` when it is not a reference the relay could use."""
    if isinstance(reference, str):
        text = reference
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise BadCorrelation("a reference must be a JSON object") from None
    else:
        data = dict(reference)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    unknown = sorted(set(data) - FIELDS) if isinstance(data, dict) else []
    if unknown:
        raise BadCorrelation(f"unknown field(s) in a reference: {', '.join(unknown)}")
    correlation_of(data)
    if not text.startswith("{") or not text.endswith("}"):
        raise BadCorrelation("a reference is a JSON object written without surrounding spaces")
    signed = f"{text}.{_mac(text, key)}"
    if len(signed) > MAX_REFERENCE:
        raise BadCorrelation(f"the signed reference is longer than {MAX_REFERENCE} characters")
    return signed


@lru_cache(maxsize=1024)
def _parse(text: str) -> Correlation | TooManyIds | None:
    """The correlation a JSON text holds, the TooManyIds it raised, or None (cached: providers
    echo the same reference with every status of a message)."""
    try:
        return correlation_of(json.loads(text))
    except TooManyIds as exc:
        return exc
    except (ValueError, RecursionError):
        return None


def read_reference(text: str | None, key: str | bytes | None = None) -> Reference | None:
    """The reference in an echoed text, with its signature checked under `key` (in constant
    time); None when the text holds no reference (a sender may use the field for its own
    purposes: the receipt then needs a record). `TooManyIds` past MAX_IDS message ids."""
    if not text or len(text) > MAX_REFERENCE or not text.lstrip().startswith("{"):
        return None
    end = text.rfind("}")
    body, tail = text[: end + 1], text[end + 1 :]
    if tail.strip() and not tail.startswith("."):
        return None
    parsed = _parse(body)
    if isinstance(parsed, TooManyIds):
        raise TooManyIds(str(parsed))
    if parsed is None:
        return None
    if not tail.strip():
        return Reference(parsed, "absent")
    if key is None:
        return Reference(parsed, "unchecked")
    given = tail[1:].encode("utf-8", "surrogatepass")
    valid = hmac.compare_digest(_mac(body, key).encode("ascii"), given)
    return Reference(parsed, "valid" if valid else "invalid")


@lru_cache(maxsize=1024)  # a provider echoes the same reference with every status
def judge(
    text: str | None, own: frozenset[str], default: str | None, key: str | bytes | None
) -> Verdict:
    """Whether a source whose own targets are `own` (its `target` and `targets`), whose default
    target is `default` and whose reference key is `key` (None: none) may route a receipt by
    the reference `text`. `TooManyIds` past MAX_IDS message ids."""
    reference = read_reference(text, key)
    if reference is None or not own:  # a source without targets routes by records alone
        return NO_ROUTE
    if key is not None and reference.signature != "valid":
        why = "is not signed" if reference.signature == "absent" else "has an invalid signature"
        return Verdict(forbidden=f"the reference {why} under the source's reference_key")
    correlation = reference.correlation.with_target(default)
    if not correlation.target:
        return NO_ROUTE
    if correlation.target not in own:
        mine = ", ".join(sorted(own))
        return Verdict(
            forbidden=f"the reference names target {correlation.target!r}, not one of the "
            f"source's own ({mine})"
        )
    return Verdict(correlation)
