"""What a translator produces: descriptions of HTTP requests, and the ways it can decline."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

# Ids the relay makes are uuid5 under this namespace, so that a repeated attempt sends the same
# ids and the target can recognise a retry of something it already stored.
RELAY_NAMESPACE = uuid.UUID("5f0c9a3e-6d0b-4f5e-9a51-6b3d2f1c7e11")


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """One HTTP request to a target, without its authentication (the transport adds that)."""

    api: str
    endpoint: str
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Skip:
    """The target kind has no use for this status; the event is counted, not sent."""

    reason: str


class NotDeliverable(ValueError):
    """The event passed the schema but cannot be expressed in this target's API."""


_NAMESPACE = RELAY_NAMESPACE.bytes


def stable_id(*parts: str) -> str:
    """A UUID derived from `parts`: the same event always yields the same id. It is
    `str(uuid.uuid5(RELAY_NAMESPACE, "\x1f".join(parts)))`, computed without building UUID
    objects (several ids an event, so `uuid` was a few per cent of a worker's CPU)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + "\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, the form both APIs accept (orjson: the same bytes as the standard
    library's compact form, a few times faster)."""
    return orjson.dumps(value)


def load_json(body: bytes) -> Any:
    """A JSON document the relay wrote itself (a translated body, to merge it with others)."""
    return orjson.loads(body)


Merged = tuple[OutboundRequest, tuple[int, ...]]
"""A request to send, and the indexes of the translated requests it carries."""


def coalesce(
    requests: Sequence[OutboundRequest],
    group: Callable[[OutboundRequest], Hashable | None],
    units: Callable[[OutboundRequest], int],
    limit: int,
    merge: Callable[[list[OutboundRequest]], OutboundRequest],
) -> list[Merged]:
    """Fewer requests with the same content: requests with the same `group` key (None: never
    merged) travel together, in order, up to `limit` units per request. A request alone in its
    group is sent as it was translated, so its ids stay those of a lone attempt."""
    chunks: dict[Hashable, list[list[int]]] = {}
    order: list[list[int]] = []
    for index, request in enumerate(requests):
        name = group(request)
        if name is None:
            order.append([index])
            continue
        open_chunks = chunks.setdefault(name, [])
        if open_chunks:
            last = open_chunks[-1]
            if sum(units(requests[i]) for i in last) + units(request) <= limit:
                last.append(index)
                continue
        chunk = [index]
        open_chunks.append(chunk)
        order.append(chunk)
    return [
        (requests[c[0]] if len(c) == 1 else merge([requests[i] for i in c]), tuple(c))
        for c in order
    ]
