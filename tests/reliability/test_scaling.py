"""Three workers on one Redis: thousands of events, none lost, none posted twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.support.harness import Relay, event, posted_ids
from worker.dev.sandbox import Sandbox

EVENTS = 3000


@pytest.mark.timeout(300)
def test_three_workers_share_the_work_without_loss_or_duplicates(
    relay: Relay, sandbox: Sandbox, figures
) -> None:
    # given three workers (at DEBUG: a bundle that is all done logs its line only then)
    relay.env["RELAY_LOG_LEVEL"] = "DEBUG"
    for name in ("one", "two", "three"):
        relay.start_worker(name)
    statuses = ("delivered", "failed", "sent", "undelivered")
    events = [event("md" if i % 2 else "sf", statuses[i % 4], f"m-{i}") for i in range(EVENTS)]
    expected = {
        e["message_ids"][0] for e in events if not (e["target"] == "sf" and e["status"] == "sent")
    }

    # when thousands of events are pushed
    started = time.monotonic()
    relay.push(*events)
    relay.wait_settled(EVENTS, timeout=240)
    seconds = time.monotonic() - started

    # then each postable one was posted exactly once
    posts = Counter(posted_ids(sandbox.requests()))
    bundles_of = [
        sum(
            " in a lane: " in line
            for line in (relay.tmp / f"{name}-{i}.log").read_text().splitlines()
        )
        for i, name in enumerate(("one", "two", "three"))
    ]
    figures(
        events=EVENTS,
        posted=sum(posts.values()),
        lost=len(expected - set(posts)),
        duplicates=sum(n - 1 for n in posts.values()),
        seconds=round(seconds, 1),
        events_per_second=round(EVENTS / seconds),
        bundles_per_worker=bundles_of,
    )
    assert set(posts) == expected
    assert max(posts.values()) == 1
    assert relay.dead_letters() == []
