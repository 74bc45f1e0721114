"""Fixtures of the observability tests: a real Flower watching the test's relay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.flower import start_flower
from tests.support.harness import Relay


@pytest.fixture
def flower(relay: Relay) -> Iterator[str]:
    yield from start_flower(relay)
