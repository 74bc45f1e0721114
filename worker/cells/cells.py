"""The cells of this deployment, as the settings name them, and which one this process serves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from worker.cells.router import cell_of, event_cell, text_cell
from worker.settings import Settings, get_settings
from worker.settings.cells import cell_index, cell_urls
from worker.settings.spec import safe_url
from worker.stores.connection import get_redis, using


@dataclass(frozen=True, slots=True)
class Cells:
    """The cells' URLs in their fixed order, the list before the last growth (empty when no
    cell is being added), and the index of this process's own cell (its REDIS_URL)."""

    urls: tuple[str, ...]
    before: tuple[str, ...] = ()
    mine: int = 0

    @property
    def count(self) -> int:
        return len(self.urls)

    @property
    def growing(self) -> bool:
        """Whether a cell is being added (RELAY_CELLS_BEFORE is set and shorter)."""
        return 0 < len(self.before) < len(self.urls)

    def of_event(self, event: Any) -> int:
        return event_cell(event, self.count)

    def of_text(self, text: str | bytes) -> int:
        return text_cell(text, self.count)

    def of_receipt(self, source: str, provider_message_id: str) -> int:
        """Where a correlation record and the receipts it answers meet."""
        return cell_of(source, provider_message_id, self.count)

    def client(self, cell: int, *, raw: bool = False) -> redis.Redis:
        return get_redis(self.urls[cell], raw=raw)

    def name(self, cell: int) -> str:
        """How output names a cell: its index and its URL without a password."""
        return f"cell {cell} ({safe_url(self.urls[cell])})"

    @contextlib.contextmanager
    def inside(self, cell: int) -> Iterator[None]:
        """The stores, built within the block, read and write `cell`'s Redis."""
        with using(self.urls[cell]):
            yield


def get_cells() -> Cells:
    """The cells this process's settings name (one cell, REDIS_URL, when RELAY_CELLS is unset)."""
    return cells_of(get_settings())


def cells_of(settings: Settings) -> Cells:
    """The cells `settings` name."""
    urls = tuple(cell_urls(settings.cells)) or (settings.redis_url,)
    before = tuple(cell_urls(settings.cells_before))
    mine = cell_index(list(urls), settings.redis_url) or 0
    return Cells(urls, before, mine)
