"""10,000 hostile items among 1,000 valid events, RPUSHed straight onto the inbox: every valid
event is delivered once, every hostile item is a dead letter with its reason, and the
workers are alive and still taking work afterwards."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.support.harness import Relay, event, posted_ids
from tests.support.hostile import hostile
from worker.dev.sandbox import Sandbox

HOSTILE = 10_000
VALID = 1_000


@pytest.mark.timeout(400)
def test_hostile_items_among_valid_ones_lose_nothing_and_stop_nothing(
    relay: Relay, sandbox: Sandbox, rpush: Callable[..., None], figures: Callable[..., None]
) -> None:
    # given 10,000 hostile items shuffled among 1,000 valid events, and two workers
    rng = random.Random(10)
    valid = [event("md", "delivered", f"fuzz-ok-{i}") for i in range(VALID)]
    items = [hostile(rng, i) for i in range(HOSTILE)] + [json.dumps(e).encode() for e in valid]
    rng.shuffle(items)
    workers = [relay.start_worker("a"), relay.start_worker("b")]

    # when a producer RPUSHes them, a thousand per command
    started = time.monotonic()
    for i in range(0, len(items), 1000):
        rpush(*items[i : i + 1000])
    relay.wait_settled(HOSTILE + VALID, timeout=300)
    seconds = time.monotonic() - started

    # then each hostile item is a dead letter with a reason, each valid event went out once
    letters = relay.dead_letters()
    reasons = Counter(d.reason for d in letters)
    posts = Counter(posted_ids(sandbox.requests()))
    figures(
        items=len(items),
        dead_letters=len(letters),
        reasons=dict(reasons),
        delivered=relay.counts("md").get("delivered"),
        posted_twice=sum(1 for n in posts.values() if n > 1),
        seconds=round(seconds, 1),
    )
    assert len(letters) == HOSTILE and all(d.error for d in letters)
    assert set(reasons) <= {"invalid", "unroutable"}
    assert set(posts) == {e["message_ids"][0] for e in valid}
    assert set(posts.values()) == {1}

    # and the workers are alive and still take work
    assert all(w.poll() is None for w in workers)
    more = [event("md", "delivered", f"fuzz-after-{i}") for i in range(5)]
    rpush(*[json.dumps(e) for e in more])
    relay.wait_settled(HOSTILE + VALID + 5, timeout=30)
    assert {e["message_ids"][0] for e in more} <= set(posted_ids(sandbox.requests()))
