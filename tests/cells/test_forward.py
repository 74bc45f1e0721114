"""Where a worker sends what it finds in its cell's inbox: the cell of the event, and while a
cell is being added, the old cell as long as its ledger remembers the message. Cells here are
databases of the session's Redis (a cell is any Redis URL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.support.harness import own_key_prefix
from worker.cells.cells import Cells
from worker.cells.forward import Forwarder
from worker.cells.router import cell_of
from worker.stores.ledger import message_key


@pytest.fixture
def urls(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    base = redis_url.rsplit("/", 1)[0]
    with own_key_prefix(redis_url, monkeypatch, "t-forward") as name:
        found = [f"{base}/{db}" for db in (11, 12, 13, 14)]
        yield found
        for url in found:  # only this test's keys (the databases may be shared)
            client = redis.Redis.from_url(url)
            stale = list(client.scan_iter(match=f"{name}:*"))
            if stale:
                client.delete(*stale)
            client.close()


def moving(old: int, new: int) -> str:
    """A message id of target sf whose cell is `old` among 3 cells and `new` among 4."""
    while True:
        mid = f"mv-{uuid.uuid4().hex[:10]}"
        if cell_of("sf", mid, 3) == old and cell_of("sf", mid, 4) == new:
            return mid


def payload(mid: str) -> bytes:
    return json.dumps({"target": "sf", "message_ids": [mid], "status": "sent"}).encode()


def remember(url: str, mid: str) -> None:
    redis.Redis.from_url(url).hset(message_key("sf", mid), "o", "1")


@pytest.mark.parametrize(
    ("mine", "old", "new", "history_in_old", "home"),
    [
        (1, 1, 3, True, 1),  # the old cell keeps what its ledger remembers
        (1, 1, 3, False, 3),  # and forwards a message it never saw
        (3, 1, 3, True, 1),  # the new cell sends a remembered message back to its old cell
        (3, 1, 3, False, 3),  # and keeps a new one
        (0, 1, 3, True, 3),  # a cell that is neither: by the new list
        (2, 2, 2, False, 2),  # a message whose cell did not change stays
    ],
)
def test_while_a_cell_is_added_a_message_stays_where_its_history_is(
    urls: list[str], mine: int, old: int, new: int, history_in_old: bool, home: int
) -> None:
    mid = moving(old, new)
    if history_in_old:
        remember(urls[old], mid)
    forwarder = Forwarder(Cells(tuple(urls), tuple(urls[:3]), mine))
    assert forwarder.home(payload(mid)) == home


def test_without_growth_the_list_alone_decides(urls: list[str]) -> None:
    mid = moving(1, 3)
    remember(urls[1], mid)  # a history in the old cell counts for nothing now
    assert Forwarder(Cells(tuple(urls), (), 1)).home(payload(mid)) == 3


@pytest.mark.parametrize("item", [b"not json", b'{"target": "sf"}', b"[1, 2]", b"\xff\xfe"])
def test_what_is_no_routable_event_stays_where_it_was_found(urls: list[str], item: bytes) -> None:
    assert Forwarder(Cells(tuple(urls), tuple(urls[:3]), 2)).home(item) == 2


def test_split_keeps_this_cells_items_in_order_and_sends_the_others(urls: list[str]) -> None:
    cells = Cells(tuple(urls[:3]), (), 0)
    mids = [f"sp-{n}" for n in range(30)]
    forwarder = Forwarder(cells)
    kept, away = forwarder.split([payload(m) for m in mids])
    assert [mids[i] for i in kept] == [m for m in mids if cell_of("sf", m, 3) == 0]
    assert sorted(c for c, _ in away) == sorted(
        cell_of("sf", m, 3) for m in mids if m not in [mids[i] for i in kept]
    )
    forwarder.send(away)
    for cell in (1, 2):
        inbox = redis.Redis.from_url(urls[cell]).lrange(f"{cells_prefix()}:inbox", 0, -1)
        assert [json.loads(i)["message_ids"][0] for i in inbox] == [
            m for m in mids if cell_of("sf", m, 3) == cell
        ]


def cells_prefix() -> str:
    from worker.settings import get_settings

    return get_settings().key_prefix
