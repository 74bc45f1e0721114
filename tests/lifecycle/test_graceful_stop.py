"""SIGTERM to a busy worker (what Kubernetes and compose send): it finishes or hands back
everything it holds, exits within its grace period, and a new worker finishes the stream
with nothing lost and nothing posted twice."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Fault, Sandbox

EVENTS = 2000
GRACE = 60.0  # the grace period the deploy files give a worker


@pytest.mark.timeout(240)
def test_sigterm_mid_stream_hands_everything_back_and_loses_nothing(
    relay: Relay, sandbox: Sandbox, figures
) -> None:
    # given a worker busy with a stream against a 50 ms target, a few events parked for 2 s
    sandbox.add_fault(Fault(api="medallia", status=503, retry_after="2", times=30, match="m-p"))
    sandbox.add_fault(Fault(api="medallia", delay=0.05, times=0))
    events = [
        event("md", "delivered", f"m-{'p' if i % 50 == 0 else 'g'}-{i}") for i in range(EVENTS)
    ]
    first = relay.start_worker("leaving")
    relay.push(*events)
    wait_for(lambda: relay.counts("md").get("delivered", 0) >= 200, 60, "work under way")

    # when it is told to stop (SIGTERM to its process group) mid-stream
    stopped = time.monotonic()
    os.killpg(first.pid, signal.SIGTERM)
    first.wait(timeout=GRACE)
    stop_seconds = time.monotonic() - stopped
    delivered_by_first = relay.counts("md").get("delivered", 0)
    relay.start_worker("arriving")

    # then it exited in time, and the new worker delivered the rest: none lost, none twice
    wanted = {e["message_ids"][0] for e in events}
    wait_for(lambda: wanted <= set(posted_ids(sandbox.requests())), 120, "every event")
    relay.wait_settled(EVENTS, timeout=60)
    posts = Counter(posted_ids(sandbox.requests()))
    twice = sum(n - 1 for n in posts.values())
    figures(
        events=EVENTS,
        stop_seconds=round(stop_seconds, 1),
        delivered_before_stop=delivered_by_first,
        lost=len(wanted - set(posts)),
        posted_twice=twice,
        exit_code=first.returncode,
    )
    assert stop_seconds < GRACE
    assert twice == 0
    assert relay.dead_letters() == []
