"""Every path that pushes onto the inbox keeps its bound (RELAY_INBOX_MAX): a registration's
release and the pump's stop at it and the receipts keep waiting (never lost, never expired
while their record exists); a replayed receipt is refused with InboxFull."""

from __future__ import annotations

import time

import pytest
import redis

from tests.stores.test_correlations import RECEIPT, TO_SF, inbox, wait_for_record
from worker.settings import get_settings
from worker.stores.bounds import InboxFull
from worker.stores.connection import key
from worker.stores.correlations import Correlations
from worker.stores.waiting import WaitingPump

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def bound_of_two(prefix: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_INBOX_MAX", "2")
    get_settings.cache_clear()
    redis_client.rpush(key("inbox"), "{}", "{}")  # full


def test_a_registration_releases_nothing_into_a_full_inbox_and_the_pump_does_later(
    bound_of_two: None, redis_client: redis.Redis
) -> None:
    now = time.time()
    wait_for_record(redis_client, now=now)
    correlations = Correlations(redis_client)
    assert correlations.register([("smpp", "p-1", TO_SF, 3600)]) == 0
    assert len(inbox(redis_client)) == 2 and correlations.waiting() == 1
    pump = WaitingPump(redis_client)
    pump.pump_once(now + 3600)  # far past its deadline, but its record exists: it waits
    assert correlations.waiting() == 1 and not list(pump.dead.iter())
    redis_client.lpop(key("inbox"))
    pump.pump_once(now + 7200)
    assert correlations.waiting() == 0 and inbox(redis_client)[-1]["message_ids"] == ["m-1"]


def test_a_release_stops_at_the_bound(bound_of_two: None, redis_client: redis.Redis) -> None:
    redis_client.lpop(key("inbox"))  # room for one
    for _ in range(3):
        wait_for_record(redis_client)
    assert Correlations(redis_client).register([("smpp", "p-1", TO_SF, 3600)]) == 1
    assert len(inbox(redis_client)) == 2 and Correlations(redis_client).waiting() == 2


def test_a_replayed_receipt_is_refused_by_a_full_inbox(
    bound_of_two: None, redis_client: redis.Redis
) -> None:
    correlations = Correlations(redis_client)
    correlations.redis.set(
        f"{key('corr', 'smpp', 'p-1')}", '{"message_ids":["m-1"],"channel":"c","target":"sf"}'
    )
    item = {
        "id": "x",
        "source": "smpp",
        "receipt": RECEIPT.to_dict(),
        "received_ms": 1,
        "deadline": 1,
    }
    with pytest.raises(InboxFull):
        correlations.resubmit(item, 30)
    assert len(inbox(redis_client)) == 2
