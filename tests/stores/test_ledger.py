"""The event ledger on a real Redis: claims, done marks and the dedup window."""

from __future__ import annotations

import pytest
import redis

from worker.settings import get_settings
from worker.stores.ledger import Entry, EventLedger, event_key

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
    ledger.mark("sf", "evt-1", ["m1"], None)
    assert redis_client.hgetall(event_key("sf", "evt-1")) == {"m:m1": "d", "v": "1"}
    assert not claim("sf", "evt-1", "env-a")
    ttl = redis_client.ttl(f"{prefix}:event:sf:evt-1")
    assert 0 < ttl <= 300
    ledger.forget("md", "evt-1", ["m1"])
    assert claim("md", "evt-1", "env-d")


def test_claims_are_per_message_id(prefix: str, redis_client: redis.Redis) -> None:
    # given an event for m1 and m2, held by a parked envelope; m1 then refused and forgotten
    ledger = EventLedger(redis_client)
    ledger.admit([Entry("sf", "evt-2", "parked", 60, ("m1", "m2"))])
    ledger.forget("sf", "evt-2", ["m1"])

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

    # when the older delivered status is admitted, then after the read was delivered again
    [before] = ledger.admit([older])
    ledger.mark("sf", "evt-read", ["m1"], (2_000, "read"))
    [after] = ledger.admit([Entry("sf", "evt-delivered-2", "c", 60, ("m1",), 1_000, "delivered")])

    # then it is fresh while the read is only on its way, and stale once the read was delivered
    assert (before.fresh, after.stale) == (["m1"], ["m1"])
