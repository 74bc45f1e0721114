"""REDIS_URL in kombu's Sentinel form: what the stores read from it, and what logs show of it."""

from __future__ import annotations

import pytest

from worker.settings import safe_url
from worker.stores.connection import SentinelAddress, is_sentinel, parse_sentinel_url

pytestmark = pytest.mark.timeout(10)


def test_every_sentinel_is_read_and_the_first_address_names_the_masters_db_and_password() -> None:
    # given kombu's form: sentinels joined by ';', credentials and database on the first
    url = "sentinel://:s%40cret@10.0.0.1:26379/2;sentinel://10.0.0.2;sentinel://10.0.0.3:26380"

    # when it is read
    address = parse_sentinel_url(url)

    # then each sentinel is there (26379 by default) and the master's db and password too
    assert is_sentinel(url) and not is_sentinel("redis://127.0.0.1:6379/0")
    assert address == SentinelAddress(
        sentinels=[("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380)],
        db=2,
        username=None,
        password="s@cret",
    )


def test_a_sentinel_url_is_shown_without_its_password() -> None:
    url = "sentinel://:secret@h1:26379/0;sentinel://:secret@h2:26379/0"

    assert safe_url(url) == "sentinel://***@h1:26379/0;sentinel://***@h2:26379/0"
