"""The router: the published jump hash, pinned vectors other languages can check against, and
its properties (stable, in range, balanced, moving only what must move when a cell is added)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.cells.router import cell_of, event_cell, hash_key, jump, routing_pair, text_cell


@pytest.mark.parametrize(
    ("key", "buckets", "bucket"),
    [  # the vectors other implementations publish (the paper's C++, ClickHouse, Rust crates)
        (1, 1, 0),
        (42, 57, 43),
        (0xDEAD10CC, 1, 0),
        (0xDEAD10CC, 666, 361),
        (256, 1024, 520),
        (0, 100, 0),
        (1, 60, 55),
        (2, 60, 46),
    ],
)
def test_jump_matches_the_published_vectors(key: int, buckets: int, bucket: int) -> None:
    assert jump(key, buckets) == bucket


@pytest.mark.parametrize(
    ("first", "second", "key", "cells"),
    [  # the documented rule's own vectors (docs/deploying/cells.md): (cells 1, 2, 3, 4, 10)
        ("sf", "0Mw5g00000A1", 0xCCFCB46BA27369DB, [0, 0, 2, 2, 7]),
        ("md", "mid-1", 0x0D44CD772313086F, [0, 1, 1, 1, 8]),
        ("sf-prod", "0Mw5g00000A2", 0x05697D77F1F9D735, [0, 1, 1, 3, 7]),
        ("twilio", "SM0001", 0x0BFCA8F0B2A14A18, [0, 1, 2, 2, 2]),
    ],
)
def test_the_rule_gives_its_documented_vectors(
    first: str, second: str, key: int, cells: list[int]
) -> None:
    assert hash_key(first, second) == key
    assert [cell_of(first, second, n) for n in (1, 2, 3, 4, 10)] == cells


@pytest.mark.parametrize(
    ("event", "pair"),
    [
        ({"target": "sf", "message_ids": ["a", "b"]}, ("sf", "a")),
        ({"target": "sf", "message_ids": []}, None),
        ({"target": 3, "message_ids": ["a"]}, None),
        ({"message_ids": ["a"]}, None),
        ({"target": "sf", "message_ids": [7]}, None),
        ({"target": "sf", "message_ids": "a"}, None),
        (["sf", "a"], None),
        (None, None),
    ],
)
def test_routing_reads_the_target_and_the_first_message_id(event: object, pair: object) -> None:
    assert routing_pair(event) == pair
    assert event_cell(event, 5) == (0 if pair is None else cell_of("sf", "a", 5))


@pytest.mark.parametrize("text", ["not json", "[1,", '{"target": "sf"}', "[" * 5000, ""])
def test_text_that_is_no_routable_event_goes_to_the_first_cell(text: str) -> None:
    assert text_cell(text, 4) == 0


def test_text_and_decoded_events_route_alike() -> None:
    assert text_cell('{"target":"sf","message_ids":["x1","x2"]}', 7) == cell_of("sf", "x1", 7)


@given(st.text(), st.text(min_size=1), st.integers(min_value=1, max_value=300))
def test_a_cell_is_stable_and_in_range(target: str, mid: str, cells: int) -> None:
    cell = cell_of(target, mid, cells)
    assert 0 <= cell < cells
    assert cell == cell_of(target, mid, cells)


@given(st.text(), st.text(min_size=1), st.integers(min_value=1, max_value=300))
def test_adding_a_cell_moves_a_message_only_onto_the_new_cell(
    target: str, mid: str, cells: int
) -> None:
    before, after = cell_of(target, mid, cells), cell_of(target, mid, cells + 1)
    assert after in (before, cells)


MESSAGES = [("sf", f"0Mw{n:09d}") for n in range(30_000)]


@pytest.mark.parametrize("cells", [2, 3, 4, 8])
def test_messages_spread_evenly(cells: int) -> None:
    counts = Counter(cell_of(t, m, cells) for t, m in MESSAGES)
    share = len(MESSAGES) / cells
    assert sorted(counts) == list(range(cells))
    assert all(abs(n - share) < 0.05 * share for n in counts.values()), counts


@pytest.mark.parametrize("cells", [1, 2, 3, 7])
def test_growing_moves_about_one_in_n_plus_one(cells: int) -> None:
    moved = sum(cell_of(t, m, cells) != cell_of(t, m, cells + 1) for t, m in MESSAGES)
    expected = len(MESSAGES) / (cells + 1)
    assert abs(moved - expected) < 0.05 * expected


def test_no_bucket_is_refused() -> None:
    with pytest.raises(ValueError):
        jump(1, 0)
