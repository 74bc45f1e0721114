"""Correlation records and the receipts waiting for them meet in the cell of (source, provider
message id): a record is stored there, and releases there what waits for it (the events it
makes go on to their message's cell through that cell's workers, `worker.cells.forward`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from tasks.upstream.correlation import Correlation
from worker.cells.cells import Cells, get_cells
from worker.stores.correlations import Correlations

Record = tuple[str, str, Correlation, float]
"""(source, provider message id, resolved correlation, ttl seconds)."""


def register_in_cells(records: Iterable[Record], cells: Cells | None = None) -> int:
    """Store each record in its cell and release what waits for it; return how many went."""
    cells = cells or get_cells()
    groups: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        groups[cells.of_receipt(record[0], record[1])].append(record)
    released = 0
    for cell in sorted(groups):
        with cells.inside(cell):
            released += Correlations().register(groups[cell])
    return released
