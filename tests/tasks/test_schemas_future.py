"""A status dated more than 5 minutes ahead of now is invalid for every producer: the clock is
passed in, so each row states its own now."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.schemas import InvalidEvent, load_event
from tests.tasks.schema_builders import JAN_1_2024_MS, JAN_1_2024_S, raw_event

NOW = JAN_1_2024_S  # the clock of every row: 2024-01-01T00:00:00Z
MINUTES = 60

ROWS = [
    pytest.param(NOW, True, id="now"),
    pytest.param(NOW - 86400, True, id="a-day-ago"),
    pytest.param(NOW + 5 * MINUTES, True, id="exactly-5-minutes-ahead"),
    pytest.param((NOW + 5 * MINUTES) * 1000, True, id="exactly-5-minutes-ahead-ms"),
    pytest.param((NOW + 5 * MINUTES) * 1000 + 1, False, id="5-minutes-and-1-ms-ahead"),
    pytest.param(NOW + 6 * MINUTES, False, id="6-minutes-ahead"),
    pytest.param("2024-01-01T00:04:59+00:00", True, id="iso-just-inside"),
    pytest.param("2024-01-01T02:05:01+02:00", False, id="iso-with-offset-just-outside"),
    pytest.param("2199-01-01T00:00:00Z", False, id="iso-2199"),
    pytest.param(str(NOW + 3600), False, id="epoch-string-an-hour-ahead"),
    pytest.param(7_258_032_000_000, False, id="epoch-ms-2199"),
]


@pytest.mark.parametrize(("occurred_at", "valid"), ROWS)
def test_a_time_more_than_5_minutes_ahead_of_now_is_invalid(occurred_at: Any, valid: bool) -> None:
    raw = raw_event(occurred_at=occurred_at)
    if valid:
        assert load_event(raw, now=NOW).occurred_ms <= JAN_1_2024_MS + 5 * MINUTES * 1000
        return
    with pytest.raises(InvalidEvent) as caught:
        load_event(raw, now=NOW)
    assert "occurred_at: " in str(caught.value) and "in the future" in str(caught.value)


def test_a_future_time_is_reported_beside_the_other_problems() -> None:
    raw = raw_event(occurred_at=NOW + 3600, recipient="")
    with pytest.raises(InvalidEvent) as caught:
        load_event(raw, now=NOW)
    assert "occurred_at: " in str(caught.value) and "recipient: " in str(caught.value)


def test_without_a_clock_given_the_schema_reads_the_real_one() -> None:
    with pytest.raises(InvalidEvent):
        load_event(raw_event(occurred_at="2199-01-01T00:00:00Z"))
    assert load_event(raw_event()).occurred_ms == JAN_1_2024_MS
