"""`relay status` shows in-flight lists the set of lanes lacks: a 0.1.0 worker's (it never
joins the set), which only a worker's start looks for, so one that died after every newer
worker started would otherwise sit there unseen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.harness import own_key_prefix
from worker.intake.inflight import lane_keys, lane_name, lanes_key
from worker.ops.status import collect_status, render_status
from worker.stores.connection import key


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with own_key_prefix(redis_url, monkeypatch, "unlisted") as name:
        yield name


def test_status_counts_lists_missing_from_the_set_of_lanes(
    prefix: str, raw_client: redis.Redis
) -> None:
    # given a dead 0.1.0 worker's list (no lease), a live one's (leased), and a lane of this
    # release in the set
    raw_client.rpush(key("inflight", "celery@old-a:7"), b"{}", b"{}")
    raw_client.rpush(key("inflight", "celery@old-b:8"), b"{}")
    raw_client.set(key("inflight-lease", "celery@old-b:8"), "celery@old-b:8", ex=30)
    lane = lane_name("celery@new:9", 0)
    raw_client.rpush(lane_keys(lane)[0], b"\x01r:1\n{}")
    raw_client.sadd(lanes_key(), lane)

    # when the operator asks for the status
    report = collect_status()

    # then the unlisted lists are counted apart, the unleased one named as waiting for a
    # worker's start, and the lane in the set counted as before
    assert report["inflight"]["unlisted"] == {"lists": 2, "events": 3, "unleased_events": 2}
    assert report["inflight"]["events"] == 1
    text = render_status(report)
    assert "not in the set of lanes (an earlier release's): 3 event(s) in 2 list(s)" in text
    assert "2 of them in lists with no lease" in text
