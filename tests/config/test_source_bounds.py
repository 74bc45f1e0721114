"""A source's own targets, reference key and bounds: defaults, values, and one problem line
each, at start-up."""

from __future__ import annotations

from typing import Any

import pytest

from tests.config.test_sources import SOURCES, parse, problems
from worker.sources import (
    DEFAULT_MAX_DEAD_LETTERS,
    DEFAULT_MAX_RECEIPTS,
    DEFAULT_MAX_WAITING,
    DEFAULT_RECEIPTS_PER_SECOND,
)

IB = {"kind": "infobip", "token": "${TOKEN}"}


def test_a_source_without_these_keys_gets_the_defaults_and_no_targets_of_its_own() -> None:
    ib = parse(SOURCES).sources["ib"]
    assert (ib.targets, ib.reference_key) == (frozenset(), None)
    assert (ib.max_receipts, ib.receipts_per_second) == (1000, 1000.0)
    assert (ib.max_waiting, ib.max_dead_letters) == (DEFAULT_MAX_WAITING, DEFAULT_MAX_DEAD_LETTERS)
    assert (DEFAULT_MAX_RECEIPTS, DEFAULT_RECEIPTS_PER_SECOND) == (1000, 1000.0)


def test_a_sources_own_targets_are_its_target_and_its_targets() -> None:
    table = {
        **IB,
        "target": "sf-prod",
        "targets": ["medallia-eu"],
        "reference_key": "${TOKEN}",
        "max_receipts": 100,
        "receipts_per_second": 50,
        "max_waiting": 7,
        "max_dead_letters": 9,
    }
    ib = parse({"ib": table}).sources["ib"]
    assert ib.targets == frozenset({"sf-prod", "medallia-eu"})
    assert ib.reference_key == "tok-5" and "tok-5" not in repr(ib)
    assert (ib.max_receipts, ib.receipts_per_second, ib.max_waiting, ib.max_dead_letters) == (
        100,
        50.0,
        7,
        9,
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"targets": "sf-prod"}, "sources.ib.targets: must be a list of configured target names"),
        ({"targets": ["nowhere"]}, "sources.ib.targets: 'nowhere' is not a configured target"),
        ({"targets": []}, "sources.ib.targets: must be a list of configured target names"),
        ({"reference_key": "literal"}, 'sources.ib.reference_key: write secrets as "${ENV_VAR}"'),
        ({"max_receipts": 0}, "sources.ib.max_receipts: must be a whole number from 1 to"),
        ({"max_receipts": 1.5}, "sources.ib.max_receipts: must be a whole number from 1 to"),
        ({"max_waiting": -1}, "sources.ib.max_waiting: must be a whole number from 1 to"),
        ({"max_dead_letters": True}, "sources.ib.max_dead_letters: must be a whole number"),
        ({"receipts_per_second": 0}, "sources.ib.receipts_per_second: must be a number from"),
        ({"receipts_per_second": "fast"}, "sources.ib.receipts_per_second: must be a number"),
    ],
)
def test_a_bad_bound_or_target_list_is_one_problem_line(
    change: dict[str, Any], expected: str
) -> None:
    assert expected in "\n".join(problems({"ib": {**IB, **change}}))
