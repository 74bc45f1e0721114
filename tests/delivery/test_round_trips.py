"""What a lone event costs in Redis round trips, on a real worker: events pushed one at a time
(a moderate rate) each cost the worker a BLMOVE, a take, an admission and a settling script,
and no SCRIPT EXISTS (a pipeline's scripts go by their text). Before, each also cost a SCRIPT
EXISTS and a take that found nothing: 215 scripted calls for these 40 events, against 189."""

from __future__ import annotations

import time

import pytest
import redis

from tests.support.harness import Relay, event
from worker.dev.sandbox import Sandbox
from worker.intake.push import push_events

EVENTS = 40
SCRIPTED = ("eval", "evalsha", "blmove", "script|exists")
IDLE_PER_SECOND = 10
"""Calls a worker makes on its own clock meanwhile (about 7 a second measured): each of its 4
lanes looks at the inbox once a second, the pumps poll (RELAY_RETRY_POLL=1 here), the lease
keeper looks for dead workers."""


def _calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in SCRIPTED}


@pytest.mark.timeout(120)
def test_a_lone_event_settles_by_script_text_and_asks_no_script_exists(
    relay: Relay, sandbox: Sandbox, redis_url: str, figures
) -> None:
    # given a worker that delivered one event already (scripts loaded, lanes looked at)
    client = redis.Redis.from_url(redis_url)
    relay.env["RELAY_RETRY_POLL"] = "1"
    relay.start_worker()
    push_events([event("md", "delivered", "warm-up")])
    relay.wait_settled(1)

    # when events are pushed one at a time, each settled before the next
    before, started = _calls(client), time.monotonic()
    for i in range(EVENTS):
        push_events([event("md", "delivered", f"m-{i}")])
        relay.wait_settled(2 + i)
    after, seconds = _calls(client), time.monotonic() - started

    # then each cost the worker BLMOVE, take, admission and settling (the pushes are one
    # EVALSHA each), and the relay never asked SCRIPT EXISTS (kombu may, once, for its own)
    used = {name: after[name] - before[name] for name in SCRIPTED}
    worker_calls = used["eval"] + used["evalsha"] + used["blmove"] - EVENTS
    figures(events=EVENTS, seconds=round(seconds, 1), worker_scripted_calls=worker_calls, **used)
    assert used["script|exists"] <= 1
    assert used["eval"] <= EVENTS + 1
    assert worker_calls <= 5 * EVENTS + IDLE_PER_SECOND * seconds
    assert len(sandbox.requests()) == EVENTS + 1
