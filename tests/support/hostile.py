"""Hostile producers' items, for the volume tests: each breaks the contract in its own way."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from tests.support.harness import event


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"n": value}
    return value


def _pop_required(e: dict[str, Any], rng: random.Random) -> None:
    e.pop(
        rng.choice(
            ["event_id", "target", "status", "message_ids", "channel", "recipient", "occurred_at"]
        )
    )


def _wrong_type(e: dict[str, Any], rng: random.Random) -> None:
    field = rng.choice(["event_id", "message_ids", "channel", "recipient"])
    e[field] = rng.choice([123, {"a": 1}, False, 4.5])


# Each breaks the contract at least once; applied to an otherwise valid event.
_MUTATIONS: list[Callable[[dict[str, Any], random.Random], None]] = [
    _pop_required,
    _wrong_type,
    lambda e, rng: e.update(channel="x" * 70_000),  # over the size limit: refused at push
    lambda e, rng: e.update(recipient="y" * 5_000),  # long, under the limit: schema refuses
    lambda e, rng: e.update(extra=_nested(200)),  # nesting in an unknown field
    lambda e, rng: e.update(status="lost", occurred_at="yesterday"),
    lambda e, rng: e.update(
        error={"code": 1, "name": "x"}, message_ids=[f"m{j}" for j in range(101)]
    ),
    lambda e, rng: e.update(status="failed", message_ids=[""]),
]
# Lines that are not an event object at all.
_RAW: list[Callable[[int, random.Random], bytes]] = [
    lambda i, rng: b"{not json " + str(i).encode(),
    lambda i, rng: b'{"event_id": "\xff\xfe' + str(i).encode() + b'", "target": "md"}',
    lambda i, rng: json.dumps(rng.choice([1, "text", None, [1], True, 3.5])).encode(),
    lambda i, rng: b"[" * 50_000 + b"]" * 50_000,  # deeper than a JSON parser follows
]


def malformed(rng: random.Random, i: int) -> bytes:
    """One line that breaks the contract in one of many ways."""
    choice = i % (len(_MUTATIONS) + len(_RAW))
    if choice >= len(_MUTATIONS):
        return _RAW[choice - len(_MUTATIONS)](i, rng)
    broken = event("md", "delivered", f"bad-{i}")
    _MUTATIONS[choice](broken, rng)
    return json.dumps(broken).encode()


def _with_text(e: dict[str, Any], field: str, raw: str) -> bytes:
    """The event as JSON with `raw` (JSON text) in place of one field's value."""
    marker = "@@"
    return json.dumps({**e, field: marker}).replace(f'"{marker}"', raw).encode()


# Items that once stopped a bundler or a whole bundle (found by the hostile-input suite).
_WORSE: list[Callable[[dict[str, Any], random.Random], bytes]] = [
    lambda e, rng: _with_text(e, "recipient", '"\\ud800+49"'),  # a lone surrogate
    lambda e, rng: _with_text(e, "occurred_at", "1" + "0" * 400),  # an int past float
    lambda e, rng: _with_text(e, "occurred_at", '"' + "1" * 5000 + '"'),  # int() refuses
    lambda e, rng: b"[" * 700 + b"]" * 700,  # parses, then fails wherever stored
    lambda e, rng: json.dumps(e).encode()[:-1] + b',"r":"caf\xe9"}',  # not UTF-8
]


def hostile(rng: random.Random, i: int) -> bytes:
    """One item that breaks the contract: the old kinds and those that once crashed."""
    if i % 3:
        return malformed(rng, i)
    return _WORSE[i % len(_WORSE)](event("md", "delivered", f"worse-{i}"), rng)
