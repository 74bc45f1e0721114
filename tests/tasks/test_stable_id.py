"""The relay's derived ids are uuid5 under its namespace, computed the quick way: the same ids
as `uuid.uuid5` for any parts (a target recognises a retry by them, across versions)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from tasks.outbound import RELAY_NAMESPACE, stable_id

# Valid Unicode only: the schema refuses lone surrogates before any id is made.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@given(st.lists(TEXT, min_size=1, max_size=5))
def test_stable_id_is_uuid5_of_the_joined_parts(parts: list[str]) -> None:
    assert stable_id(*parts) == str(uuid.uuid5(RELAY_NAMESPACE, "\x1f".join(parts)))


def test_a_known_id_stays_the_same() -> None:
    # pinned: ids already sent to targets must be made again the same way
    assert stable_id("ev-1", "m-1", "request") == str(
        uuid.uuid5(uuid.UUID("5f0c9a3e-6d0b-4f5e-9a51-6b3d2f1c7e11"), "ev-1\x1fm-1\x1frequest")
    )
