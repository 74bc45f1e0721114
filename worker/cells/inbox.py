"""Putting events in: each onto the inbox of its message's cell (`push_events`, `relay push`,
and events forwarded between cells)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import islice

from worker.cells.cells import Cells, get_cells
from worker.intake.inbox import PUSH_CHUNK, Inbox, InboxFull


class RoutedInbox:
    """The inboxes of every cell: items are pushed onto their cell's, a thousand at a time."""

    def __init__(self, cells: Cells | None = None) -> None:
        self.cells = cells or get_cells()
        self._inboxes: dict[int, Inbox] = {}

    def inbox(self, cell: int) -> Inbox:
        if cell not in self._inboxes:
            self._inboxes[cell] = Inbox(self.cells.client(cell))
        return self._inboxes[cell]

    def push(self, items: Iterable[str]) -> int:
        """Push JSON texts, each onto its cell's inbox; return how many. `InboxFull` (with how
        many went in, in every cell) when one cell's inbox is at its bound."""
        if self.cells.count == 1:
            return self.inbox(0).push(items)
        return self.push_routed((self.cells.of_text(text), text) for text in items)

    def push_routed(self, pairs: Iterable[tuple[int, str | bytes]]) -> int:
        """Push (cell, item) pairs; the order of the items of one cell is kept."""
        count = 0
        it = iter(pairs)
        while chunk := list(islice(it, PUSH_CHUNK)):
            groups: dict[int, list[str | bytes]] = defaultdict(list)
            for cell, item in chunk:
                groups[cell].append(item)
            for cell in sorted(groups):
                try:
                    count += self.inbox(cell).push(groups[cell])
                except InboxFull as exc:
                    raise InboxFull(count + exc.queued, self.inbox(cell).limit) from None
        return count
