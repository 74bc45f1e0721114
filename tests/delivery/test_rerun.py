"""Redis trouble while a bundle's outcomes are recorded, injected into a real pipeline (real
Redis, real sandbox target): the bundle is not sent again; it is recorded once Redis answers,
and a bundle that does run again (the lane's retry) starts from its first attempts, coalesced,
skipping what was answered."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis

from tasks.envelope import Envelope
from tests.delivery.pipelines import local_pipeline
from tests.support.harness import Relay, event, posted_ids
from worker.delivery.pipeline import Pipeline
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pipeline(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return local_pipeline(relay, monkeypatch)


def _as_the_lane_does(pipeline: Pipeline, envelopes: list[Envelope]) -> int:
    """Run the bundle until it is recorded, as a lane does on redis.RedisError; how many runs."""
    for runs in range(1, 6):
        try:
            pipeline.process_bundle(envelopes)
            return runs
        except redis.RedisError:
            continue
    raise AssertionError("the bundle never settled")


def test_redis_failing_while_outcomes_are_recorded_posts_nothing_again(
    relay: Relay, pipeline: Pipeline, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bundle of 20 Medallia receipts (one request) and Redis failing the first time
    # the bundle's outcomes are written
    write, failures = pipeline.settler._write, [1]

    def flaky(writes: Any) -> None:
        if failures.pop() if failures else 0:
            raise redis.ConnectionError("Redis went away")
        write(writes)

    monkeypatch.setattr(pipeline.settler, "_write", flaky)
    events = [event("md", "delivered") for _ in range(20)]

    # when the bundle is delivered as a lane delivers it
    runs = _as_the_lane_does(pipeline, [Envelope(e) for e in events])

    # then it went out once, in one request, and was counted once
    assert runs == 1
    assert len(sandbox.requests()) == 1
    assert Counter(posted_ids(sandbox.requests())) == {e["message_ids"][0]: 1 for e in events}
    assert relay.counts("md") == {"delivered": 20}


def test_a_bundle_run_again_is_coalesced_and_skips_what_was_answered(
    relay: Relay, pipeline: Pipeline, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bundle whose first run had 5 Salesforce failures accepted and 20 Medallia
    # receipts refused (503, one request), then lost Redis for good (the worker stopping)
    from worker.delivery import settle

    sandbox.add_fault(Fault(api="medallia", status=503, times=1))
    refused = [Envelope(event("md", "delivered")) for _ in range(20)]
    accepted = [Envelope(event("sf", "failed")) for _ in range(5)]
    write = pipeline.settler._write
    settle.STOPPING.set()
    monkeypatch.setattr(pipeline.settler, "_write", _refuse)
    try:
        with pytest.raises(redis.RedisError):
            pipeline.process_bundle(refused + accepted)
    finally:
        settle.STOPPING.clear()
        monkeypatch.setattr(pipeline.settler, "_write", write)
    assert pipeline.book.drain(5)
    more = [Envelope(event("md", "delivered")) for _ in range(20)]

    # when the whole bundle runs again (another worker taking it over) with 20 more receipts
    pipeline.process_bundle(refused + accepted + more)

    # then the accepted ones were not posted again, and the receipts went in one request,
    # as first attempts (the refused ones' attempt was not counted)
    posts = Counter(posted_ids(sandbox.requests()))
    by_api = Counter(r["api"] for r in sandbox.requests())
    assert by_api == {"salesforce": 5, "medallia": 2}
    assert set(posts.values()) == {1} and len(posts) == 45


def _refuse(_: Any) -> None:
    raise redis.ConnectionError("Redis went away")
