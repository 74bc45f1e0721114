"""Rolling upgrades: a worker that meets an item a newer relay wrote (a message, a parked
retry, a dead letter, an event's claims) leaves it for a worker that knows its format. It is
neither posted, nor dropped, nor dead-lettered."""

from __future__ import annotations

import json
import time

import pytest
import redis

from tasks.envelope import Envelope
from tests.support.harness import Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Sandbox
from worker.stores.deadletters import DeadLetter, DeadLetterStore

pytestmark = pytest.mark.timeout(120)
FUTURE = 99


def _future_envelope(**event_fields: object) -> dict[str, object]:
    return {**Envelope(event("md", "delivered", **event_fields)).to_dict(), "v": FUTURE}


def _queued_messages(client: redis.Redis, relay: Relay) -> list[str]:
    """Message bodies waiting in the delivery queue or held unacknowledged."""
    queue = relay.env["RELAY_QUEUE"]
    waiting = [m.decode() for m in client.lrange(queue, 0, -1)]
    return waiting + [m.decode() for m in client.hvals("unacked")]


def test_a_message_of_a_newer_format_is_handed_back_untouched(
    relay: Relay, sandbox: Sandbox, raw_client: redis.Redis, figures
) -> None:
    # given a worker, and a message a newer relay published (envelope format v99)
    relay.start_worker()
    future = _future_envelope()
    relay.send_task("relay.deliver", future)

    # when the worker has met it, and an ordinary event after it
    time.sleep(3)
    ordinary = event("md", "delivered")
    relay.push(ordinary)
    relay.wait_settled(1)

    # then the newer message was neither posted nor dead-lettered and waits in Redis still;
    # the ordinary event went out
    bodies = _queued_messages(raw_client, relay)
    figures(handed_back=sum(future["id"] in b for b in bodies))
    assert any(future["id"] in b for b in bodies)
    assert posted_ids(sandbox.requests()) == ordinary["message_ids"]
    assert relay.dead_letters() == []


def test_a_retry_parked_in_a_newer_format_is_left_parked(
    relay: Relay, sandbox: Sandbox, redis_client: redis.Redis
) -> None:
    # given a retry a newer relay parked, due now
    member = json.dumps({**Envelope(event("md", "delivered")).to_compact(), "v": FUTURE})
    schedule = f"{relay.env['RELAY_KEY_PREFIX']}:retries"
    redis_client.zadd(schedule, {member: time.time() - 1})

    # when a worker's retry pump looks at it
    relay.start_worker()
    wait_for(lambda: (redis_client.zscore(schedule, member) or 0) > time.time() + 5, 20, "redate")

    # then it is still parked (put off for a newer pump), not posted, not a dead letter
    assert redis_client.zcard(schedule) == 1
    assert sandbox.requests() == []
    assert relay.dead_letters() == []
    status = json.loads(relay.cli("status", "--json").stdout)
    assert status["retries_waiting"] == {"(newer format)": 1}


def test_a_dead_letter_of_a_newer_format_is_shown_but_not_replayed(relay: Relay) -> None:
    # given a dead letter a newer relay stored
    letter = DeadLetter(reason="rejected", error="from the future", event=event("md", "sent"))
    letter.v = FUTURE
    DeadLetterStore().add(letter)

    # when the operator lists it and replays everything
    listing = relay.cli("dlq", "list")
    replay = relay.cli("dlq", "replay", "--all")

    # then it is listed, and left in the store with a word on why
    assert letter.id in listing.stdout
    assert replay.returncode == 1 and "newer relay version" in replay.stderr
    assert [d.id for d in relay.dead_letters()] == [letter.id]


def test_an_event_whose_claims_a_newer_relay_wrote_is_left_for_it(
    relay: Relay, sandbox: Sandbox, redis_client: redis.Redis
) -> None:
    # given claims of an event in a newer format
    one = event("md", "delivered")
    claims = f"{relay.env['RELAY_KEY_PREFIX']}:event:md:{one['event_id']}"
    redis_client.hset(claims, mapping={"v": FUTURE, "anything": "new"})

    # when the event arrives
    relay.start_worker()
    relay.push(one)
    wait_for(lambda: relay.counts("md").get("deferred") == 1, 20, "the event put off")

    # then it was put off (parked, no attempt), not posted, not counted a duplicate
    assert sandbox.requests() == []
    assert relay.counts("md") == {"deferred": 1}
    assert relay.retries_waiting() == 1
