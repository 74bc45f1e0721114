"""A dead letter that an internal error made (a bug in the relay, injected here into a real
pipeline on a real Redis) is delivered when replayed through a real worker; one whose event was
delivered before the bug struck stays refused; a record of the previous format (which does not
name its envelope) is replayed too."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tasks.envelope import Envelope
from tests.delivery.pipelines import local_pipeline
from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.delivery import runtime
from worker.delivery.pipeline import Pipeline
from worker.dev.sandbox import Sandbox
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.ledger import Entry, EventLedger

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def pipeline(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return local_pipeline(relay, monkeypatch)


def _replay_all(relay: Relay) -> None:
    replayed = relay.cli("dlq", "replay", "--all")
    assert replayed.returncode == 0, replayed.stderr


def test_a_dead_letter_of_an_internal_error_is_posted_when_replayed(
    relay: Relay, sandbox: Sandbox, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an event that a bug stopped after its message id was claimed (before any request)
    def broken(*_: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline.sender, "send_all", broken)
    one = event("md", "delivered")
    runtime.run_local([Envelope(one)])
    [letter] = relay.dead_letters()

    # when the operator replays it to a worker
    relay.start_worker()
    _replay_all(relay)

    # then it is posted, once, and no dead letter is left
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the replayed delivery")
    assert "internal error" in letter.error
    assert posted_ids(sandbox.requests()) == one["message_ids"]
    assert relay.dead_letters() == []


def test_a_dead_letter_of_an_event_delivered_before_the_bug_stays_refused(
    relay: Relay, sandbox: Sandbox, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an event that was posted and accepted, then broke the bookkeeping (a bug)
    def broken(*_: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(pipeline.settler, "settle", broken)
    one = event("md", "delivered")
    runtime.run_local([Envelope(one)])
    assert len(relay.dead_letters()) == 1

    # when the operator replays its dead letter
    relay.start_worker()
    _replay_all(relay)

    # then the worker finds it delivered: a duplicate, not a second post
    wait_for(lambda: relay.counts("md").get("duplicate") == 1, 30, "the replay")
    assert Counter(posted_ids(sandbox.requests())) == {one["message_ids"][0]: 1}


def test_a_dead_letter_of_the_previous_format_is_replayed_past_its_claims(
    relay: Relay, sandbox: Sandbox, tmp_path: Path
) -> None:
    # given a dead letter as the previous format stored it (no envelope named), its message
    # id still claimed by the envelope that ended so
    one = event("md", "delivered")
    EventLedger().admit([Entry("md", one["event_id"], "gone", 60, tuple(one["message_ids"]))])
    letter = DeadLetter(reason="rejected", error="internal error", event=one)
    letter.v = 1
    DeadLetterStore().add(letter)

    # when the operator replays it
    relay.start_worker()
    _replay_all(relay)

    # then it is posted once
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the replayed delivery")
    assert posted_ids(sandbox.requests()) == one["message_ids"]
