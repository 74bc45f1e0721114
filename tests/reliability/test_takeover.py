"""A worker that dies or is told to stop mid-stream: what its target had answered is not posted
again, and what it held is taken up by the others quickly.

kill -9: nothing whose 2xx answer left the target more than 250 ms before the kill is posted
again, and everything is delivered within 30 s of the kill (the goal is 15 s), with the
default lease. SIGTERM with a target slower than the lease: nothing is posted twice (the
times are scaled down: a 3 s lease, a 5 s target)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.reliability.gate import GateTarget
from tests.support.harness import CONFIG, Relay, event, wait_for

EVENTS = 1500
LATE = 0.25  # seconds before the kill within which an answer may not have been recorded yet
RATE_LIMITED = CONFIG.replace(
    'auth = {{ type = "bearer", token = "${{SF_TOKEN}}" }}',
    'auth = {{ type = "bearer", token = "${{SF_TOKEN}}" }}\nrate_limit = 200',
)


def _first_answers(gate: GateTarget) -> dict[str, float]:
    """When each message id's first 2xx answer left the target."""
    first: dict[str, float] = {}
    for answer in sorted(gate.answers(), key=lambda a: a.answered):
        if 200 <= answer.status < 300:
            for mid, _ in answer.posted:
                first.setdefault(mid, answer.answered)
    return first


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "case",
    [(RATE_LIMITED, 0.0, 300), (CONFIG, 0.03, 700)],
    ids=["rate-limited", "30ms-target"],
)
def test_kill_9_posts_again_only_what_was_answered_in_its_last_instants(
    gate: GateTarget, gate_relay: Callable[..., Relay], figures, case: tuple[str, float, int]
) -> None:
    # given two workers delivering 1,500 Salesforce failures (a request each)
    config, delay, kill_after = case
    relay = gate_relay(config=config)
    gate.arm(delay=delay)
    doomed = relay.start_worker("doomed")
    relay.start_worker("rescuer")
    relay.push(*(event("sf", "failed", f"m-{i}") for i in range(EVENTS)))
    wait_for(lambda: len(gate.accepted()) >= kill_after, 60, f"{kill_after} deliveries")

    # when one of them is SIGKILLed mid-stream
    relay.kill_worker(doomed)
    killed_at = time.time()

    # then everything is delivered, and nothing answered well before the kill again
    wanted = {f"m-{i}" for i in range(EVENTS)}
    wait_for(lambda: wanted <= set(gate.accepted()), 90, "every event")
    time.sleep(1)  # a straggler posted twice would show now
    first = _first_answers(gate)
    twice = [m for m, n in gate.accepted().items() if n > 1]
    early = [m for m in twice if first[m] < killed_at - LATE]
    taken_up = max(first.values()) - killed_at
    figures(
        delivered_before_kill=sum(1 for t in first.values() if t < killed_at),
        posted_twice=len(twice),
        twice_answered_before_kill_250ms=len(early),
        all_delivered_after_kill_s=round(taken_up, 1),
    )
    assert early == []
    assert taken_up < 30


@pytest.mark.timeout(180)
def test_sigterm_with_a_target_slower_than_the_lease_posts_nothing_twice(
    gate: GateTarget, gate_relay: Callable[..., Relay], figures
) -> None:
    # given a 3 s lease, a target that answers after 5 s, and a worker holding 100 events
    relay = gate_relay(RELAY_VISIBILITY_TIMEOUT="3")
    gate.arm(delay=5.0)
    relay.push(*(event("md", "delivered", f"m-{i}") for i in range(100)))
    leaving = relay.start_worker("leaving")
    wait_for(lambda: gate.received() > 0, 30, "requests in flight")
    relay.start_worker("staying")

    # when it is told to stop (SIGTERM) while its requests are in flight
    os.killpg(leaving.pid, signal.SIGTERM)
    leaving.wait(timeout=60)

    # then it finished them; the other worker took nothing of it over: none posted twice
    wanted = {f"m-{i}" for i in range(100)}
    wait_for(lambda: wanted <= set(gate.accepted()), 60, "every event")
    time.sleep(8)  # long past the lease: a lane taken over would be posted again by now
    twice = sum(1 for n in gate.accepted().values() if n > 1)
    figures(events=100, posted_twice=twice)
    assert twice == 0
