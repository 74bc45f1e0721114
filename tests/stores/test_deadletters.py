"""The dead-letter store on a real Redis: records, filters, size and age bounds."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tests.stores.builders import T, letter
from worker.settings import get_settings
from worker.stores import deadletters
from worker.stores.deadletters import DeadLetterStore

pytestmark = pytest.mark.timeout(30)


def test_dead_letter_add_get_remove_count(store: DeadLetterStore) -> None:
    assert store.count() == 0
    first = store.add(letter(1, history=[{"at": 1.0, "status": 400}], first_seen=T))
    second = store.add(letter(2, reason="invalid", event="not json", event_id=None, target=None))
    assert store.count() == 2
    assert store.get(first.id) == first
    assert store.get(second.id) == second
    assert store.get("no-such-id") is None
    assert [x.id for x in store.iter()] == [first.id, second.id]  # oldest first
    assert store.remove([first.id, "no-such-id"]) == 1
    assert store.get(first.id) is None
    assert store.count() == 1
    assert store.remove([]) == 0
    assert store.remove([first.id]) == 0
    assert [x.id for x in store.iter()] == [second.id]


@pytest.mark.parametrize(
    ("target", "reason", "expected"),
    [
        pytest.param(None, None, [0, 1, 2, 3, 4], id="all"),
        pytest.param("sf", None, [0, 2, 4], id="target"),
        pytest.param(None, "exhausted", [2, 3], id="reason"),
        pytest.param("sf", "exhausted", [2], id="target-and-reason"),
        pytest.param("md", "invalid", [], id="none-match"),
        pytest.param("nope", None, [], id="unknown-target"),
    ],
)
def test_dead_letter_iter_filters(
    store: DeadLetterStore, target: str | None, reason: str | None, expected: list[int]
) -> None:
    kinds = [("sf", "rejected"), ("md", "rejected"), ("sf", "exhausted"), ("md", "exhausted")]
    kinds.append(("sf", "unroutable"))
    added = [store.add(letter(n, target=t, reason=r)) for n, (t, r) in enumerate(kinds)]
    found = [x.id for x in store.iter(target=target, reason=reason)]
    assert found == [added[n].id for n in expected]


def test_dead_letter_store_is_bounded_by_size(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_SIZE", "3")
    get_settings.cache_clear()
    added = [store.add(letter(n)) for n in range(5)]
    assert store.count() == 3
    assert [x.id for x in store.iter()] == [x.id for x in added[2:]]
    for old in added[:2]:
        assert store.get(old.id) is None
    # the hash is trimmed too, not only the index
    assert store.redis.hlen(store.items) == 3


def test_dead_letter_store_is_bounded_by_age(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_AGE", "1")
    get_settings.cache_clear()
    old = store.add(letter(1))
    time.sleep(1.1)
    new = store.add(letter(2))
    assert store.get(old.id) is None
    assert [x.id for x in store.iter()] == [new.id]
    assert store.count() == 1


def test_dead_letter_age_bound_with_a_clock(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_AGE", "100")
    get_settings.cache_clear()
    clock = [T]
    monkeypatch.setattr(deadletters, "time", SimpleNamespace(time=lambda: clock[0]))
    first = store.add(letter(1))
    clock[0] = T + 50
    second = store.add(letter(2))
    clock[0] = T + 99
    third = store.add(letter(3))
    assert store.count() == 3  # nothing older than 100 s yet
    clock[0] = T + 120
    fourth = store.add(letter(4))
    assert [x.id for x in store.iter()] == [second.id, third.id, fourth.id]
    assert store.get(first.id) is None


def test_dead_letter_age_and_size_bounds_in_one_add(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_AGE", "100")
    monkeypatch.setenv("RELAY_DLQ_MAX_SIZE", "3")
    get_settings.cache_clear()
    clock = [T]
    monkeypatch.setattr(deadletters, "time", SimpleNamespace(time=lambda: clock[0]))
    added = []
    for n, at in enumerate([T, T + 50, T + 60]):
        clock[0] = at
        added.append(store.add(letter(n)))
    monkeypatch.setenv("RELAY_DLQ_MAX_SIZE", "2")
    get_settings.cache_clear()
    clock[0] = T + 120
    added.append(store.add(letter(3)))
    # T is too old, and of the rest only the 2 newest fit: T+50 goes as well
    assert [x.id for x in store.iter()] == [added[2].id, added[3].id]
    assert store.redis.hlen(store.items) == 2
