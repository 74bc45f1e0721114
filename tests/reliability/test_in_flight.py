"""An answered request is never sent again: not after a burst of answers, nor when Redis
pauses while the answers come in. The target holds the requests of a 200-event bundle of
Salesforce failures (one request each), refuses the first 14 with 503 and answers the rest
together; a second worker is the one the relay would hand a dropped bundle to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import redis

from tests.reliability.gate import GateTarget
from tests.support.harness import Relay, event, wait_for
from worker.dev.local_redis import LocalRedis

ROUND = 200
REFUSED = 14


def _failures(tag: str) -> tuple[list[dict[str, object]], set[str]]:
    """A round of Salesforce failures and their message ids."""
    mids = [f"m-{tag}-{i}" for i in range(ROUND)]
    return [event("sf", "failed", mid) for mid in mids], set(mids)


def _twice(accepted: Counter[str]) -> int:
    return sum(1 for n in accepted.values() if n > 1)


@pytest.mark.timeout(120)
def test_a_burst_of_answers_posts_nothing_twice(
    gate: GateTarget, gate_relay: Callable[..., Relay], own_redis: LocalRedis, figures
) -> None:
    # given a bundle of 200 Salesforce failures waiting before the worker starts, and a target
    # that refuses the first 14 requests at once and answers the other 186 together
    relay = gate_relay(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url, decode_responses=True)
    gate.arm(refuse=REFUSED, hold=ROUND - REFUSED)
    events, wanted = _failures("burst")
    relay.push(*events)

    # when a worker delivers them
    relay.start_worker("burst")
    wait_for(lambda: wanted <= set(gate.accepted()), 60, "every acceptance")
    relay.wait_settled(ROUND)

    # then each was accepted once, and the answers did not open a connection each: the
    # worker keeps a few (Redis still counts those a burst opened, idle in the pool)
    accepted, clients = gate.accepted(), int(admin.info("clients")["connected_clients"])
    figures(events=ROUND, accepted_twice=_twice(accepted), redis_connections=clients)
    assert _twice(accepted) == 0
    assert clients < 50
    admin.close()


@pytest.mark.timeout(240)
def test_a_redis_pause_while_answers_come_in_posts_nothing_twice(
    gate: GateTarget, gate_relay: Callable[..., Relay], own_redis: LocalRedis, figures
) -> None:
    # given two workers on a Redis of the test's own, and a target that refuses the first 14
    # requests of each round and answers the rest together, 200 ms after Redis was paused for
    # 600 ms (the answers arrive while no bookkeeping can be written)
    relay = gate_relay(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    relay.start_worker("a")
    relay.start_worker("b")
    wanted: set[str] = set()
    for round_ in range(4):
        gate.arm(
            refuse=REFUSED,
            hold=ROUND - REFUSED,
            delay=0.2,
            on_release=lambda: admin.execute_command("CLIENT", "PAUSE", 600, "ALL"),
        )
        events, mids = _failures(f"r{round_}")
        wanted.update(mids)

        # when a round is pushed and answered
        relay.push(*events)
        wait_for(lambda: wanted <= set(gate.accepted()), 60, "every acceptance")
        relay.wait_settled(ROUND * (round_ + 1), timeout=60)

    # then every message id was accepted once
    accepted = gate.accepted()
    figures(events=len(wanted), accepted_twice=_twice(accepted))
    assert _twice(accepted) == 0
    admin.close()
