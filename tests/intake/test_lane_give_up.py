"""A bug that strikes a lane after its bundle was settled (here: the broker refusing the task
event Flower is told, after the pipeline recorded every outcome) turns nothing into a dead
letter: what was delivered stays delivered, what was parked stays parked. Only what a bug left
unsettled becomes a dead letter, with its claims dropped for a replay. Real Redis, real
pipeline and sandbox target, a real feeder."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from tasks.envelope import Envelope
from tests.delivery.pipelines import local_pipeline
from tests.support.harness import Relay, event, posted_ids
from worker.bootsteps import LaneDelivery
from worker.delivery import runtime
from worker.delivery.pipeline import Pipeline
from worker.dev.sandbox import Fault, Sandbox
from worker.intake.feeder import Feeder
from worker.intake.inbox import Inbox
from worker.observe.taskevents import TaskEvents
from worker.settings import get_settings
from worker.stores.connection import get_redis

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pipeline(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return local_pipeline(relay, monkeypatch)


class BrokerGoingAway:
    """A task-event dispatcher whose broker connection goes away after the bundle started."""

    enabled, groups = True, None

    def __init__(self) -> None:
        self.sent = 0

    def send(self, *_: Any, **__: Any) -> None:
        self.sent += 1
        if self.sent > 2:  # task-received and task-started went; the ending does not
            raise OperationalError("the broker went away")


def _deliver_all(feeder: Feeder) -> None:
    items = feeder.take(0, 0)
    feeder.deliver_lane(0, items)


def test_a_failure_after_the_bundle_settled_turns_nothing_into_dead_letters(
    relay: Relay, pipeline: Pipeline, sandbox: Sandbox
) -> None:
    # given three Salesforce failures in the inbox (a request each), one of which the target
    # refuses for now (parked), and
    # a lane whose Flower task events the broker refuses
    sandbox.add_fault(Fault(api="salesforce", status=503, times=1, match="m-parked"))
    events = [event("sf", "failed", f"m-{name}") for name in ("a", "b", "parked")]
    Inbox(get_redis()).push([json.dumps(e) for e in events])
    broker = BrokerGoingAway()
    lane = LaneDelivery(TaskEvents(lambda: broker))
    feeder = Feeder(get_redis(raw=True), lane, "w@h:1", 1, 50)

    # when the lane delivers the bundle
    _deliver_all(feeder)

    # then no dead letter: two delivered, one parked for a retry, and the lane is empty
    assert broker.sent == 3
    assert relay.dead_letters() == []
    assert sorted(posted_ids(sandbox.requests())) == ["m-a", "m-b"]
    assert relay.retries_waiting() == 1
    assert relay.counts("sf") == {"delivered": 2, "retried": 1}


def test_a_bug_that_leaves_events_unsettled_dead_letters_only_those(
    relay: Relay, pipeline: Pipeline, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a delivery that settles the first of two events, then breaks (no 0.1.0 worker
    # left: dead letters name their envelope)
    monkeypatch.setenv("RELAY_COMPAT_0_1", "off")
    get_settings.cache_clear()
    events = [event("md", "delivered") for _ in range(2)]
    Inbox(get_redis()).push([json.dumps(e) for e in events])

    def half(envelopes: list[Envelope], settled: set[str]) -> None:
        runtime.run_local(envelopes[:1], settled)
        raise RuntimeError("a bug")

    feeder = Feeder(get_redis(raw=True), half, "w@h:2", 1, 50)

    # when the lane delivers the bundle
    _deliver_all(feeder)

    # then only the second is a dead letter, and a replay may claim its message id
    [letter] = relay.dead_letters()
    assert letter.event == events[1] and letter.envelope is not None
    assert posted_ids(sandbox.requests()) == events[0]["message_ids"]
