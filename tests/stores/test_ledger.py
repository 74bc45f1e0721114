"""The event ledger on a real Redis: claims, done marks and the dedup window."""

from __future__ import annotations

import pytest
import redis

from worker.settings import get_settings
from worker.stores.ledger import Done, Entry, EventLedger, message_key

pytestmark = pytest.mark.timeout(30)


def test_event_ledger_claims_once_and_remembers_done_for_the_window(
    prefix: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DEDUP_WINDOW", "300")
    get_settings.cache_clear()
    ledger = EventLedger(redis_client)

    def claim(target: str, event_id: str, owner: str) -> bool:
        [answer] = ledger.admit([Entry(target, event_id, owner, 60, ("m1",))])
        return not answer.duplicate

    assert claim("sf", "evt-1", "env-a")
    assert claim("sf", "evt-1", "env-a"), "the owner may come back"
    assert not claim("sf", "evt-1", "env-b")
    assert claim("md", "evt-1", "env-c")
    ledger.mark([Done("sf", "evt-1", ("m1",))])
    fields = redis_client.hgetall(message_key("sf", "m1"))
    assert fields["v"] == "2" and fields["e:evt-1"].startswith("d")
    assert not claim("sf", "evt-1", "env-a")
    ttl = redis_client.ttl(f"{prefix}:msg:sf:m1")
    assert 300 <= ttl <= 300 + 2 * 25 + 60  # the window, and at most the slack on top
    ledger.forget("md", "evt-1", ["m1"], owner="env-c")
    assert claim("md", "evt-1", "env-d")


def test_claims_are_per_message_id(prefix: str, redis_client: redis.Redis) -> None:
    # given an event for m1 and m2, held by a parked envelope; m1 then refused and forgotten
    ledger = EventLedger(redis_client)
    ledger.admit([Entry("sf", "evt-2", "parked", 60, ("m1", "m2"))])
    ledger.forget("sf", "evt-2", ["m1"], owner="parked")

    # when a replay of m1 (a new envelope) is admitted, and the parked one comes back
    [replay] = ledger.admit([Entry("sf", "evt-2", "replay", 60, ("m1",))])
    [parked] = ledger.admit([Entry("sf", "evt-2", "parked", 60, ("m2",))])

    # then each may send its own message id
    assert (replay.fresh, parked.fresh) == (["m1"], ["m2"])


def test_status_order_is_marked_on_delivery_not_on_admission(
    prefix: str, redis_client: redis.Redis
) -> None:
    # given a read admitted (not yet delivered) for m1
    ledger = EventLedger(redis_client)
    read = Entry("sf", "evt-read", "a", 60, ("m1",), 2_000, "read")
    older = Entry("sf", "evt-delivered", "b", 60, ("m1",), 1_000, "delivered")
    ledger.admit([read])

    # when the older delivered status is admitted, then again after the read was delivered
    [before] = ledger.admit([older])
    ledger.mark([Done("sf", "evt-read", ("m1",), (2_000, "read"), owner="a")])
    [after] = ledger.admit([older])

    # then it is held while the read is on its way (either may be stale or go), and stale
    # once the read was delivered
    assert (before.fresh, before.held, after.stale) == ([], ["m1"], ["m1"])


def test_a_parked_or_dead_lettered_status_lets_the_one_it_held_go(
    prefix: str, redis_client: redis.Redis
) -> None:
    # given a read in flight for m1 and m2, holding an older delivered status back
    ledger = EventLedger(redis_client)
    read = Entry("sf", "evt-read", "a", 60, ("m1", "m2"), 2_000, "read")
    older = Entry("sf", "evt-delivered", "b", 60, ("m1", "m2"), 1_000, "delivered")
    ledger.admit([read])
    [held] = ledger.admit([older])

    # when the read is parked for m1 and dead-lettered for m2
    ledger.mark([Done("sf", "evt-read", ("m1",), owner="a", mode="release")])
    ledger.forget("sf", "evt-read", ["m2"], owner="a")
    [again] = ledger.admit([older])

    # then the older status may go for both
    assert (held.held, again.fresh) == (["m1", "m2"], ["m1", "m2"])


def test_a_bundle_sends_only_the_newest_status_of_a_message_and_holds_the_rest(
    prefix: str, redis_client: redis.Redis
) -> None:
    # given one bundle with, for m1, a delivered then an older sent, and for m2 a sent then
    # a newer read; m3 has a skipped status (it orders nothing) beside a delivered
    ledger = EventLedger(redis_client)
    entries = [
        Entry("md", "e1", "a", 60, ("m1",), 2_000, "delivered"),
        Entry("md", "e2", "b", 60, ("m1",), 1_000, "sent"),
        Entry("md", "e3", "c", 60, ("m2",), 1_000, "sent"),
        Entry("md", "e4", "d", 60, ("m2",), 3_000, "read"),
        Entry("md", "e5", "e", 60, ("m3",), 5_000, None),
        Entry("md", "e6", "f", 60, ("m3",), 1_000, "delivered"),
    ]

    # when it is admitted
    answers = ledger.admit(entries)

    # then the newest status of each message goes, the older ones are held
    assert [(a.fresh, a.held) for a in answers] == [
        (["m1"], []),
        ([], ["m1"]),
        ([], ["m2"]),
        (["m2"], []),
        (["m3"], []),
        (["m3"], []),
    ]


def test_every_mark_renews_the_dedup_memory_of_its_message(
    prefix: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a message whose first status was claimed long ago (its hash has 5 s left)
    monkeypatch.setenv("RELAY_DEDUP_WINDOW", "300")
    get_settings.cache_clear()
    ledger = EventLedger(redis_client)
    ledger.admit([Entry("md", "evt-sent", "a", 60, ("m1",), 1_000, "sent")])
    redis_client.expire(message_key("md", "m1"), 5)

    # when a later status of it is claimed and delivered
    ledger.admit([Entry("md", "evt-delivered", "b", 60, ("m1",), 2_000, "delivered")])
    ledger.mark([Done("md", "evt-delivered", ("m1",), (2_000, "delivered"))])

    # then the hash, and so the delivered status's done mark, lives a whole window from now
    assert redis_client.ttl(message_key("md", "m1")) > 290


def test_copies_of_an_event_in_one_bundle_are_claimed_once(
    prefix: str, redis_client: redis.Redis
) -> None:
    # given one bundle holding three copies of an event (three envelopes)
    ledger = EventLedger(redis_client)
    copies = [Entry("md", "e1", owner, 60, ("m1",), 1_000, "delivered") for owner in "abc"]

    # when it is admitted
    answers = ledger.admit(copies)

    # then the first copy goes, the others are duplicates
    assert [(a.fresh, a.duplicate) for a in answers] == [(["m1"], False), ([], True), ([], True)]
