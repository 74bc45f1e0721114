"""10,000 malformed events mixed with valid ones: no crash, every bad one a dead letter with
its reason, every good one delivered, oversized ones refused without being stored whole."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Relay, event, posted_ids
from worker.dev.sandbox import Sandbox

MALFORMED = 10_000
VALID = 500


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


def _malformed(rng: random.Random, i: int) -> bytes:
    """One line that breaks the contract in one of many ways."""
    choice = i % (len(_MUTATIONS) + len(_RAW))
    if choice >= len(_MUTATIONS):
        return _RAW[choice - len(_MUTATIONS)](i, rng)
    broken = event("md", "delivered", f"bad-{i}")
    _MUTATIONS[choice](broken, rng)
    return json.dumps(broken).encode()


def _mixed_file(relay: Relay) -> tuple[list[dict[str, Any]], list[bytes], Path]:
    """VALID events and MALFORMED broken lines, shuffled, written to one file."""
    rng = random.Random(7)
    valid = [event("md", "delivered", f"good-{i}") for i in range(VALID)]
    lines = [_malformed(rng, i) for i in range(MALFORMED)]
    lines += [json.dumps(e).encode() for e in valid]
    rng.shuffle(lines)
    path = relay.tmp / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return valid, lines, path


@pytest.mark.timeout(400)
def test_malformed_events_at_volume_are_dead_lettered_and_valid_ones_delivered(
    relay: Relay, sandbox: Sandbox, figures
) -> None:
    # given 10,000 malformed lines shuffled among 500 valid events
    valid, lines, path = _mixed_file(relay)
    workers = [relay.start_worker("a", concurrency=8)]

    # when they are pushed
    started = time.monotonic()
    pushed = subprocess.run(
        [sys.executable, "-m", "worker.ops.cli.main", "push", str(path)],
        env=relay.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    relay.wait_settled(MALFORMED + VALID, timeout=300)
    seconds = time.monotonic() - started

    # then the worker never crashed, each bad line is a dead letter, each good event went out
    letters = relay.dead_letters()
    reasons = Counter(d.reason for d in letters)
    oversized = [d for d in letters if "byte limit" in d.error]
    figures(
        lines=len(lines),
        dead_letters=len(letters),
        refused_at_push=pushed.stderr.count("\n"),
        oversized=len(oversized),
        delivered=relay.counts("md").get("delivered"),
        seconds=round(seconds, 1),
    )
    assert pushed.returncode == 1
    assert all(w.poll() is None for w in workers)
    assert len(letters) == MALFORMED
    assert set(reasons) == {"invalid"}
    assert all(d.error for d in letters)
    assert oversized and all(len(str(d.event)) < 2_000 for d in oversized)
    assert set(posted_ids(sandbox.requests())) == {e["message_ids"][0] for e in valid}
