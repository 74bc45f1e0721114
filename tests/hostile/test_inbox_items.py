"""Items no schema would accept, RPUSHed straight onto the inbox: each becomes a dead letter
with its reason, the events beside it are delivered, and the worker keeps taking work."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis

from tests.support.harness import Relay, event, posted_ids
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


def _valid(n: int, tag: str) -> list[dict[str, object]]:
    return [event("md", "delivered", f"{tag}-{i}") for i in range(n)]


def test_an_item_that_is_not_utf8_is_a_dead_letter_and_the_feeder_keeps_going(
    relay: Relay, sandbox: Sandbox, rpush: Callable[..., None]
) -> None:
    # given a worker, and a non-UTF-8 item among valid events in the inbox
    before, after = _valid(3, "before"), _valid(3, "after")
    rpush(*[json.dumps(e) for e in before], b'{"r":"caf\xe9"}', *[json.dumps(e) for e in after])
    relay.start_worker()

    # when they are bundled and delivered, and more events come afterwards
    relay.wait_settled(7)
    later = _valid(2, "later")
    rpush(*[json.dumps(e) for e in later])
    relay.wait_settled(9)

    # then the bad item is a dead letter saying why, and every valid event went out once
    [letter] = relay.dead_letters()
    assert letter.reason == "invalid"
    assert "not UTF-8" in letter.error and "0xe9" in letter.error
    assert letter.event == '{"r":"caf\\xe9"}'
    ids = posted_ids(sandbox.requests())
    assert sorted(ids) == sorted(e["message_ids"][0] for e in before + after + later)
    assert relay.cli("status", "--json").returncode == 0


def test_hostile_values_each_settle_on_their_own_and_the_bundle_goes_on(
    relay: Relay, sandbox: Sandbox, rpush: Callable[..., None]
) -> None:
    # given one bundle mixing valid events with values that once crashed a worker
    good = _valid(4, "good")
    surrogate = json.dumps(event("md", "delivered", "sur")).replace('"+49', '"\\ud800+49')
    huge_int = json.dumps(event("md", "delivered", "huge")).replace(
        '"2026-11-23T10:00:00+00:00"', "1" + "0" * 400
    )
    digits = json.dumps(event("md", "delivered", "digits", occurred_at="1" * 5000))
    deep = "[" * 500 + "]" * 500
    rpush(json.dumps(good[0]), surrogate, json.dumps(good[1]), huge_int, digits)
    rpush(deep, json.dumps(good[2]), json.dumps(good[3]))
    relay.start_worker()

    # when they are processed
    relay.wait_settled(8)

    # then each hostile one is an invalid dead letter naming the problem; the rest went out
    errors = sorted(d.error for d in relay.dead_letters())
    assert [d.reason for d in relay.dead_letters()] == ["invalid"] * 4
    assert any("recipient: Not valid Unicode text" in e for e in errors)
    assert sum("occurred_at: Epoch time out of range" in e for e in errors) == 2
    assert any("nested more than 16 levels" in e for e in errors)
    assert sorted(posted_ids(sandbox.requests())) == sorted(e["message_ids"][0] for e in good)


def test_an_oversized_item_is_cut_to_a_prefix_before_a_worker_reads_it(
    relay: Relay, sandbox: Sandbox, rpush: Callable[..., None], redis_url: str
) -> None:
    # given a worker with a small item limit, an event, then two 300 kB items in one burst
    relay.env["RELAY_MAX_EVENT_BYTES"] = "4096"
    first = _valid(1, "first")
    big = json.dumps({**event("md", "sent"), "pad": "x" * 300_000})
    rpush(json.dumps(first[0]), big, big)
    relay.start_worker()

    # when they are bundled
    relay.wait_settled(3)

    # then the big ones are dead letters that keep a prefix only, and the event went out
    letters = relay.dead_letters()
    assert len(letters) == 2
    assert all("over the 4096-byte limit" in d.error for d in letters)
    assert all(len(d.event) < 2000 and "more bytes not kept" in d.event for d in letters)
    assert posted_ids(sandbox.requests()) == [first[0]["message_ids"][0]]


def test_a_full_inbox_refuses_pushes_with_a_clear_error(relay: Relay) -> None:
    # given an inbox bounded at 5 events and no worker
    relay.env["RELAY_INBOX_MAX"] = "5"

    # when 8 events are pushed
    result = relay.push(*_valid(8, "full"))

    # then 5 are queued, the rest refused with a message that says what to do, exit 1
    assert result.returncode == 1
    assert "queued 5 event(s)" in result.stdout
    assert "the inbox is full" in result.stderr and "RELAY_INBOX_MAX" in result.stderr
    status = json.loads(relay.cli("status", "--json").stdout)
    assert status["queue"]["inbox"] == 5


def test_status_and_health_show_a_lane_stuck_with_events(
    relay: Relay, redis_client: redis.Redis
) -> None:
    # given a live worker one of whose lanes has held two events since long ago
    prefix, owner = relay.env["RELAY_KEY_PREFIX"], "stuck@host:1"
    redis_client.rpush(f"{prefix}:lane:{owner}|0", "a", "b")
    redis_client.set(f"{prefix}:inflight-since:{owner}|0", "1000")
    redis_client.set(f"{prefix}:inflight-lease:{owner}", owner, ex=30)
    heartbeat = {"name": "stuck@host", "started": 0, "last_task_at": None, "tasks": 0}
    redis_client.set(f"{prefix}:workers:stuck@host", json.dumps(heartbeat), ex=30)
    # listed as a worker lists them, so that nothing has to scan the keyspace for them
    redis_client.sadd(f"{prefix}:lanes", f"{owner}|0")
    redis_client.zadd(f"{prefix}:workers-seen", {"stuck@host": time.time()})

    # when the operator asks
    status = json.loads(relay.cli("status", "--json").stdout)
    health = relay.cli("health", "--worker", "stuck@host")

    # then status counts the held events and their age, and health fails saying why
    assert status["inflight"]["events"] == 2 and status["inflight"]["oldest_seconds"] > 60
    assert health.returncode == 1
    assert "lane stuck@host:1|0 has held 2 event(s)" in health.stderr
