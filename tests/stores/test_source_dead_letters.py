"""Each source's dead letters in a store of its own, bounded by its max_dead_letters: what one
source sends never evicts a dead letter of the shared store or of another source, and reading,
replaying and purging see every store as one."""

from __future__ import annotations

import pytest

from tests.stores.builders import letter
from worker.settings import get_settings
from worker.stores.deadletters import DeadLetterStore

pytestmark = pytest.mark.timeout(30)


def test_a_sources_dead_letters_never_evict_the_shared_stores(
    store: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DLQ_MAX_SIZE", "5")
    get_settings.cache_clear()
    genuine = store.add(letter(0, reason="exhausted"))
    junk = [letter(n, reason="invalid") for n in range(1, 8)]
    for one in junk:
        store.add_all([one], "smpp", bound=5)
    assert store.get(genuine.id) == genuine
    assert store.counts() == {None: 1, "smpp": 5}  # the source's own bound: its oldest went
    assert [x.id for x in store.iter()] == [genuine.id] + [x.id for x in junk[2:]]


def test_every_store_is_read_fetched_filtered_and_purged_as_one(store: DeadLetterStore) -> None:
    shared = store.add(letter(0))
    store.add_all([mine := letter(1, reason="forbidden")], "ib", bound=10)
    store.add_all([theirs := letter(2, reason="uncorrelated")], "tw", bound=10)
    assert store.count() == 3
    assert [store.get(x.id) for x in (shared, mine, theirs)] == [shared, mine, theirs]
    assert [x.id for x in store.iter(reason="forbidden")] == [mine.id]
    assert store.remove([mine.id, theirs.id, "nope"]) == 2
    assert [x.id for x in store.iter()] == [shared.id] and store.counts()["ib"] == 0


def test_one_sources_bound_leaves_another_sources_dead_letters_alone(
    store: DeadLetterStore,
) -> None:
    store.add_all([kept := letter(0, reason="uncorrelated")], "tw", bound=2)
    store.add_all([letter(n, reason="invalid") for n in range(1, 10)], "ib", bound=2)
    assert store.get(kept.id) == kept and store.counts() == {None: 0, "ib": 2, "tw": 1}
