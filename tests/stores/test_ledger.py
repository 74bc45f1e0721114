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
        return ledger.admit([Entry(target, event_id, owner, hold=60)])[0][0]

    assert claim("sf", "evt-1", "env-a")
    assert claim("sf", "evt-1", "env-a"), "the owner may come back"
    assert not claim("sf", "evt-1", "env-b")
    assert claim("md", "evt-1", "env-c")
    ledger.done("sf", "evt-1")
    assert redis_client.get(event_key("sf", "evt-1")) == "done"
    assert not claim("sf", "evt-1", "env-a")
    ttl = redis_client.ttl(f"{prefix}:event:sf:evt-1")
    assert 0 < ttl <= 300
    ledger.forget("md", "evt-1")
    assert claim("md", "evt-1", "env-d")
