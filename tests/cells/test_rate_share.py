"""A target's rate limit past one Redis: each of N cells allows rate / N."""

from __future__ import annotations

import pytest

from worker.settings import get_settings
from worker.stores.ratelimit import RateLimiter


@pytest.mark.parametrize(
    ("cells", "first", "second"),
    [  # rate 10/s, two bundles of 5 requests at once: the second waits in a half-rate cell
        (1, 0.0, 0.0),
        (2, 0.0, 1.0),
        (4, 1.0, None),  # 2.5/s: the first waits 1 s; the second would wait 3 s > max_wait
    ],
)
def test_each_cell_allows_its_share_of_the_rate(
    prefix: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    cells: int,
    first: float,
    second: float | None,
) -> None:
    others = [f"redis://127.0.0.1:1/{n}" for n in range(1, cells)]
    monkeypatch.setenv("RELAY_CELLS", ",".join([redis_url, *others]))
    get_settings.cache_clear()
    limiter = RateLimiter(max_wait=2.0)
    assert limiter.share == cells
    now = 1_000_000.0
    assert limiter.acquire("sf", 10.0, n=5, now=now) == pytest.approx(first)
    answer = limiter.acquire("sf", 10.0, n=5, now=now)
    if second is None:
        assert answer < 0  # not reserved: parked instead
    else:
        assert answer == pytest.approx(second)
