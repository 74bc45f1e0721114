"""Celery messages (retries, replays) a worker holds unacked: renewed while it lives, so a
task slower than the visibility timeout is not handed to another worker; taken up by another
worker within 15 s of a kill -9 with the default settings."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tasks.envelope import Envelope
from tests.reliability.gate import GateTarget
from tests.support.harness import Relay, event, wait_for


def _held_by_one(relay: Relay, gate: GateTarget, events: int) -> None:
    """A first worker holds `events` retries (Celery messages) at the target; a second runs."""
    relay.start_worker("first")
    for i in range(events):
        relay.send_task("relay.deliver", Envelope(event("md", "delivered", f"m-{i}")).to_dict())
    wait_for(lambda: gate.received() >= events, 30, "the requests in flight")


@pytest.mark.timeout(120)
def test_a_task_slower_than_the_visibility_timeout_is_not_run_twice(
    gate: GateTarget, gate_relay: Callable[..., Relay], figures
) -> None:
    # given a 3 s visibility timeout, a target that answers after 6 s, and a worker holding 4
    # retries there, beside another worker
    relay = gate_relay(RELAY_VISIBILITY_TIMEOUT="3")
    gate.arm(delay=6.0)
    _held_by_one(relay, gate, 4)
    relay.start_worker("second")

    # when the tasks outlast the visibility timeout twice over
    wait_for(lambda: len(gate.accepted()) == 4, 30, "the answers")
    time.sleep(4)

    # then each was posted once
    figures(requests=len(gate.answers()))
    assert len(gate.answers()) == 4


@pytest.mark.timeout(120)
def test_a_dead_workers_retries_are_taken_up_within_15_s(
    gate: GateTarget, gate_relay: Callable[..., Relay], figures
) -> None:
    # given default settings, a target that holds its first requests (no answer), and a
    # worker holding 4 retries there, beside another worker
    relay = gate_relay()
    gate.arm(hold=100, hold_timeout=60)
    _held_by_one(relay, gate, 4)
    first = relay.workers[0]
    relay.start_worker("second")

    # when the first is killed
    relay.kill_worker(first)
    killed = time.monotonic()
    gate.arm()

    # then the other worker posts them within 15 s
    wait_for(lambda: len(gate.accepted()) == 4, 60, "the retries taken up")
    taken_up = time.monotonic() - killed
    figures(taken_up_s=round(taken_up, 1))
    assert taken_up < 15
