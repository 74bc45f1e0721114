"""Each event_id posted once; an older status never posted over a newer one."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


def test_the_same_event_pushed_again_and_again_is_posted_once(
    relay: Relay, sandbox: Sandbox, figures
) -> None:
    # given two workers and 50 events, each pushed 4 times, interleaved (concurrent copies)
    relay.start_worker("a")
    relay.start_worker("b")
    events = [event("md", "delivered") for _ in range(50)]

    # when all copies are pushed at once, and once more after they were delivered
    relay.push(*(events * 4))
    relay.wait_settled(200)
    relay.push(*events)
    relay.wait_settled(250)

    # then each was posted once and every other copy counted as a duplicate
    posts = Counter(posted_ids(sandbox.requests()))
    figures(
        events=50,
        copies_pushed=250,
        posts=sum(posts.values()),
        duplicates_counted=relay.counts("md").get("duplicate"),
    )
    assert sorted(posts.values()) == [1] * 50
    assert relay.counts("md") == {"delivered": 50, "duplicate": 200}


def test_an_older_status_arriving_late_is_skipped_as_stale(
    relay: Relay, sandbox: Sandbox, figures
) -> None:
    # given `read` at 10:00:05 already sent for m-1, and `failed` (final) sent for m-2
    relay.start_worker()
    relay.push(
        event("sf", "read", "m-1", occurred_at="2026-11-23T10:00:05Z"),
        event("sf", "failed", "m-2", occurred_at="2026-11-23T10:00:00Z"),
    )
    relay.wait_settled(2)

    # when older or overtaken statuses arrive for them, and a newer one for m-1
    relay.push(
        event("sf", "delivered", "m-1", occurred_at="2026-11-23T10:00:01Z"),  # older: stale
        event("sf", "delivered", "m-1", occurred_at="2026-11-23T10:00:05Z"),  # same time, lower
        event("sf", "delivered", "m-2", occurred_at="2026-11-23T10:00:09Z"),  # after final
        event("sf", "read", "m-1", occurred_at="2026-11-23T10:00:09Z"),  # newer: posted
    )
    relay.wait_settled(6)

    # then only the newer one was posted; the rest were counted as stale
    acks = [r for r in sandbox.requests() if r["endpoint"] == "acknowledgement"]
    times = [a["json"]["acknowledgements"][0]["acknowledgementTimestamp"] for a in acks]
    figures(stale=relay.counts("sf").get("stale"), acknowledgements=len(acks))
    assert relay.counts("sf") == {"delivered": 3, "stale": 3}
    assert times == sorted(times) and len(acks) == 2


def test_a_replayed_dead_letter_whose_event_was_delivered_meanwhile_is_not_posted_again(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given an event that ended as a dead letter (a target that rejected it once)
    from worker.dev.sandbox import Fault

    sandbox.add_fault(Fault(api="medallia", status=400, times=1))
    relay.start_worker()
    sent = event("md", "sent")
    relay.push(sent)
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the dead letter")

    # when the producer pushes it again and the operator then replays the dead letter
    relay.push(sent)
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the producer's resend")
    assert relay.cli("dlq", "replay", "--all").returncode == 0

    # then the resend went out (a dead letter frees its message ids), and the replay found
    # them delivered: a duplicate, not a second post
    wait_for(lambda: relay.counts("md").get("duplicate") == 1, 30, "the replay")
    assert Counter(posted_ids(sandbox.requests()))[sent["message_ids"][0]] == 1
