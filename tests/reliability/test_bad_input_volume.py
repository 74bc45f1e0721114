"""10,000 malformed events mixed with valid ones: no crash, every bad one a dead letter with
its reason, every good one delivered, oversized ones refused without being stored whole."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Relay, event, posted_ids
from tests.support.hostile import malformed
from worker.dev.sandbox import Sandbox

MALFORMED = 10_000
VALID = 500


def _mixed_file(relay: Relay) -> tuple[list[dict[str, Any]], list[bytes], Path]:
    """VALID events and MALFORMED broken lines, shuffled, written to one file."""
    rng = random.Random(7)
    valid = [event("md", "delivered", f"good-{i}") for i in range(VALID)]
    lines = [malformed(rng, i) for i in range(MALFORMED)]
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
    pushed = relay.cli("push", str(path), timeout=300)
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
