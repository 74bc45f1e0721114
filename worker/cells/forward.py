"""Events that reached the wrong cell go on to the right one, before anything is done to them.

A worker reads its own cell's inbox. What it finds there may belong elsewhere: an event the
ingress made in the cell of its receipt (records and receipts meet by provider message id, the
event belongs to its message's cell), a producer's RPUSH that used an old list of cells, or,
while a cell is being added, a message whose cell changed. Those items are pushed, as written,
onto the inbox of the cell they belong to; the lane keeps them until that push is done, so a
worker killed in between forwards them again (the ledger of the right cell drops the second
copy). While a cell is being added (RELAY_CELLS_BEFORE), a message stays in its old cell as
long as that cell's ledger holds its history, so that its order and dedup stay in one ledger.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from prometheus_client import Counter

from worker.cells.cells import Cells
from worker.cells.inbox import RoutedInbox
from worker.cells.router import cell_of, routing_pair
from worker.intake.inbox import InboxFull
from worker.stores.ledger import message_key

FORWARDED = Counter(
    "relay_forwarded_events",
    "Events a worker found in its cell's inbox and pushed on to the cell they belong to, by "
    "that cell (the ingress's events from another cell's receipts; a producer using an old "
    "list of cells; messages staying in their old cell while a cell is added).",
    ["to_cell"],
)


class ForwardBlocked(redis.RedisError):
    """The right cell's inbox is full: the lane keeps the items and tries again."""


def _event(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None


class Forwarder:
    """Decides which of a lane's items this cell keeps, and forwards the others."""

    def __init__(self, cells: Cells) -> None:
        self.cells = cells
        self.inbox = RoutedInbox(cells)

    def home(self, payload: bytes) -> int:
        """The cell an item belongs to now; an item that is not an event stays here (its
        dead letter is kept where it was found)."""
        pair = routing_pair(_event(payload))
        if pair is None:
            return self.cells.mine
        now = cell_of(*pair, self.cells.count)
        if not self.cells.growing:
            return now
        before = cell_of(*pair, len(self.cells.before))
        if before == now or self.cells.mine not in (before, now):
            return now
        # This cell is the message's old one or its new one: the old one keeps the messages
        # its ledger remembers (a claim, a done or an order mark, within the dedup window).
        history = self.cells.client(before).exists(message_key(*pair))
        return before if history else now

    def split(self, payloads: list[bytes]) -> tuple[list[int], list[tuple[int, bytes]]]:
        """The indexes of the items kept here, and (cell, item) for the others."""
        kept: list[int] = []
        away: list[tuple[int, bytes]] = []
        for index, payload in enumerate(payloads):
            cell = self.home(payload)
            if cell == self.cells.mine:
                kept.append(index)
            else:
                away.append((cell, payload))
        return kept, away

    def send(self, away: list[tuple[int, bytes]]) -> None:
        """Push the items onto their cells' inboxes; `ForwardBlocked` while one is full."""
        try:
            self.inbox.push_routed(away)
        except InboxFull as exc:
            raise ForwardBlocked(str(exc)) from None
        for cell, _ in away:
            FORWARDED.labels(str(cell)).inc()
