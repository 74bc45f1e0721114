"""The retry schedule: full-jitter backoff, Retry-After, and the attempts and age caps."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from tasks.backoff import RetryPolicy, backoff_delay, next_retry_delay, parse_retry_after

POLICY = RetryPolicy(base_delay=2.0, max_delay=1800.0, max_attempts=15, max_age=86400.0)
NOW = 1_770_000_000.0
DRAWS = 2000


@pytest.mark.parametrize("attempts", range(1, 21), ids=lambda n: f"attempt-{n}")
def test_full_jitter_stays_within_exponential_ceiling(attempts: int) -> None:
    # given a seeded random source and the ceiling for this attempt
    rand = random.Random(attempts)
    ceiling = min(POLICY.max_delay, POLICY.base_delay * 2 ** (attempts - 1))
    # when many delays are drawn
    delays = [backoff_delay(POLICY, attempts, rand=rand) for _ in range(DRAWS)]
    # then every one lies in [0, ceiling] and together they span the range (full jitter)
    assert all(0.0 <= d <= ceiling for d in delays)
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling


@pytest.mark.parametrize(
    ("policy", "attempts"),
    [
        pytest.param(POLICY, 20, id="default-policy-attempt-20"),
        pytest.param(RetryPolicy(base_delay=10.0, max_delay=60.0), 4, id="small-cap-early"),
        pytest.param(RetryPolicy(base_delay=5.0, max_delay=5.0), 1, id="cap-equals-base"),
    ],
)
def test_delay_never_exceeds_max_delay(policy: RetryPolicy, attempts: int) -> None:
    # given a policy whose ceiling for `attempts` is past max_delay
    rand = random.Random(7)
    # when many delays are drawn
    delays = [backoff_delay(policy, attempts, rand=rand) for _ in range(DRAWS)]
    # then max_delay bounds them all
    assert max(delays) <= policy.max_delay
    assert max(delays) > 0.95 * policy.max_delay


def test_same_seed_gives_same_delay() -> None:
    # given two random sources with the same seed
    a, b = random.Random(42), random.Random(42)
    # when a delay is drawn from each
    # then they agree
    assert backoff_delay(POLICY, 5, rand=a) == backoff_delay(POLICY, 5, rand=b)


@pytest.mark.parametrize(
    ("retry_after", "attempts", "low", "high"),
    [
        pytest.param(100.0, 1, 100.0, 100.0, id="above-jitter-ceiling"),
        pytest.param(30.0, 1, 30.0, 30.0, id="attempt-1-ceiling-2"),
        pytest.param(0.5, 12, 0.5, POLICY.max_delay, id="below-jitter-ceiling"),
        pytest.param(5000.0, 1, POLICY.max_delay, POLICY.max_delay, id="capped-by-max-delay"),
        pytest.param(float("inf"), 3, POLICY.max_delay, POLICY.max_delay, id="infinite"),
    ],
)
def test_retry_after_raises_delay_but_not_beyond_max_delay(
    retry_after: float, attempts: int, low: float, high: float
) -> None:
    # given a Retry-After of `retry_after` seconds
    rand = random.Random(3)
    # when delays are drawn
    delays = [backoff_delay(POLICY, attempts, retry_after, rand) for _ in range(200)]
    # then each is at least what was asked (capped by max_delay) and never beyond max_delay
    assert all(low <= d <= high for d in delays)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("120", 120.0, id="delta-seconds"),
        pytest.param(" 5 ", 5.0, id="delta-with-spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(formatdate(NOW + 30, usegmt=True), 30.0, id="http-date-30s-ahead"),
        pytest.param(formatdate(NOW - 30, usegmt=True), 0.0, id="http-date-in-past"),
        pytest.param("garbage", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    # given a Retry-After header value
    # when it is parsed at NOW
    result = parse_retry_after(header, NOW)
    # then it yields the seconds to wait, or None when it means nothing
    assert result == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_retry_after_ignores_unicode_digit_garbage() -> None:
    # given a header that str.isdigit() accepts but float() does not
    header = "²"
    # when it is parsed
    result = parse_retry_after(header, NOW)
    # then it is ignored like any other garbage
    assert result is None


@pytest.mark.parametrize(
    ("attempts", "now"),
    [
        pytest.param(POLICY.max_attempts, NOW + 10, id="attempts-used-up"),
        pytest.param(POLICY.max_attempts + 3, NOW + 10, id="attempts-beyond"),
        pytest.param(2, NOW + POLICY.max_age, id="age-at-deadline"),
        pytest.param(2, NOW + POLICY.max_age + 1, id="age-past-deadline"),
    ],
)
def test_next_retry_delay_gives_up(attempts: int, now: float) -> None:
    # given an event first seen at NOW that used `attempts` attempts
    # when the next delay is asked for at `now`
    delay = next_retry_delay(POLICY, attempts, NOW, now, rand=random.Random(1))
    # then there is none: the event is exhausted
    assert delay is None


def test_next_retry_delay_is_the_backoff_delay_when_in_time() -> None:
    # given an event with attempts and age to spare
    # when the next delay is asked for
    delay = next_retry_delay(POLICY, 3, NOW, NOW + 10, rand=random.Random(5))
    # then it is the plain backoff delay for the same draw
    assert delay == backoff_delay(POLICY, 3, rand=random.Random(5))


def test_last_allowed_attempt_still_gets_a_delay() -> None:
    # given an event one attempt short of its limit
    # when the next delay is asked for
    delay = next_retry_delay(POLICY, POLICY.max_attempts - 1, NOW, NOW, rand=random.Random(2))
    # then a retry is still scheduled
    assert delay is not None


@pytest.mark.parametrize(
    ("seconds_left", "retry_after"),
    [
        pytest.param(1.0, 50.0, id="retry-after-past-deadline"),
        pytest.param(0.25, None, id="jitter-past-deadline"),
    ],
)
def test_next_retry_delay_is_shortened_to_end_at_max_age(
    seconds_left: float, retry_after: float | None
) -> None:
    # given an event whose deadline is `seconds_left` away and a wait that would overrun it
    policy = RetryPolicy(base_delay=100.0, max_delay=1000.0, max_attempts=10, max_age=3600.0)
    now = NOW + policy.max_age - seconds_left
    # when the next delay is asked for
    delay = next_retry_delay(policy, 5, NOW, now, retry_after, random.Random(9))
    # then the wait ends exactly at the deadline
    assert delay == pytest.approx(seconds_left)


def test_very_late_attempt_is_capped_not_overflowing() -> None:
    # given a policy that allows thousands of attempts
    policy = RetryPolicy(max_attempts=5000, max_age=10 * 86400.0)
    # when the delay after attempt 2000 is drawn
    delay = backoff_delay(policy, 2000, rand=random.Random(1))
    # then it is bounded by max_delay like any other
    assert 0.0 <= delay <= policy.max_delay
