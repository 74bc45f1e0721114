"""A task never outlives its time budget: rate-limit waits and slow targets park what is
left (unsent requests spend no attempt), so Redis never hands a live worker's message to a
second worker and nothing is posted twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import CONFIG, Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Fault, Sandbox
from worker.settings import get_settings

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def tight_relay(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    """A 2 s task budget and a 10 s visibility timeout; Salesforce limited to 5 requests/s,
    with a 2.5 s timeout."""
    config = CONFIG.replace(
        'authorization_context = "Partner1_ChannelDefinition1"',
        'authorization_context = "Partner1_ChannelDefinition1"\nrate_limit = 5\ntimeout = 2.5',
    ).replace(
        'channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"',
        'channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"\ntimeout = 2',
    )
    relay = Relay(tmp_path, redis_url, sandbox.url, monkeypatch, config=config)
    relay.env.update(RELAY_TASK_BUDGET="2", RELAY_VISIBILITY_TIMEOUT="10")
    yield relay
    relay.stop_all()
    get_settings.cache_clear()


def test_rate_limit_waits_stop_at_the_budget_and_nothing_is_posted_twice(
    tight_relay: Relay, sandbox: Sandbox
) -> None:
    relay = tight_relay
    # given one failure for 60 messages: 60 interactions, 12 s at 5 a second
    relay.start_worker()
    failure = event("sf", "failed", *(f"m-rl-{i}" for i in range(60)))

    # when it is pushed
    relay.push(failure)
    wait_for(lambda: len(set(posted_ids(sandbox.requests()))) == 60, 90, "all 60 posted")
    relay.wait_settled(1, timeout=30)

    # then each message id went out exactly once (the task never ran into the visibility
    # timeout, so its message was never handed to another thread while it slept)
    assert set(Counter(posted_ids(sandbox.requests())).values()) == {1}
    assert relay.dead_letters() == []


def test_requests_the_budget_left_unsent_spend_no_attempt(
    tight_relay: Relay, sandbox: Sandbox
) -> None:
    relay = tight_relay
    # given a worker with one task thread (four HTTP threads) and a target whose first four
    # answers take 3 s (past the 2.5 s timeout, itself past the 2 s budget)
    sandbox.add_fault(Fault(api="salesforce", delay=3.0, times=4))
    relay.env["RELAY_CONCURRENCY"] = "1"
    relay.start_worker(concurrency=1)
    events = [event("sf", "failed", f"m-slow-{i}") for i in range(8)]

    # when eight failures (eight interactions: each travels alone) arrive in one bundle
    relay.push(*events)
    relay.wait_settled(8, timeout=60)

    # then the four sent were retried (an attempt each); the four the budget left unsent were
    # deferred, no attempt spent; all were delivered (the four that timed out were accepted
    # late by the target too: a timeout is a retry)
    counts = relay.counts("sf")
    assert (counts["retried"], counts["deferred"], counts["delivered"]) == (4, 4, 8)
    assert set(posted_ids(sandbox.requests())) == {e["message_ids"][0] for e in events}
