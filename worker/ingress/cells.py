"""The ingress past one Redis: each receipt is planned and stored in the cell of its (source,
provider message id), where its correlation record is (`worker.cells.records`); the events it
makes go on to their message's cell through that cell's workers (`worker.cells.forward`).

A callback whose receipts fall in several cells is stored cell by cell, not in one script
call: if a later cell refuses (quota, full inbox, Redis away) the provider is answered 429 or
503 and sends the whole callback again, and what an earlier cell took is taken again under the
same ids (the same event ids, which the ledger of their message's cell posts once). A source's
quotas are shared out: each cell allows 1/N of its receipts a second and of its max_waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import defaultdict

from tasks.upstream.receipts import Receipt
from worker.cells.cells import Cells, cells_of
from worker.cells.records import register_in_cells
from worker.ingress.storing import Storage
from worker.intake.correlate import Checked
from worker.settings import Settings
from worker.sources import Source
from worker.stores.take import Plan


def shared(source: Source, cells: int) -> Source:
    """The source as one of `cells` cells sees it: its rate and waiting quotas divided."""
    if cells <= 1:
        return source
    return dataclasses.replace(
        source,
        receipts_per_second=source.receipts_per_second / cells,
        max_waiting=max(1, math.ceil(source.max_waiting / cells)),
    )


def merged(plans: list[Plan]) -> Plan:
    """One plan of the plans of a callback's cells (what the answer and the metrics count)."""
    whole = Plan(cost=sum(p.cost for p in plans) or 1)
    for part in plans:
        whole.events += part.events
        whole.waiting += part.waiting
        whole.refused += part.refused
        whole.ignored += part.ignored
    return whole


class CellStorage(Storage):
    """The ingress's writes over every cell (its own dead letters and counts in the first)."""

    def __init__(self, cells: Cells) -> None:
        super().__init__(cells.urls[0])
        self.cells = cells
        self.parts = [self, *(Storage(url) for url in cells.urls[1:])]

    async def accept(self, source: Source, receipts: list[Receipt], received_ms: int) -> Plan:
        groups: dict[int, list[Receipt]] = defaultdict(list)
        for receipt in receipts:
            groups[self.cells.of_receipt(source.name, receipt.provider_message_id)].append(receipt)
        if not groups:  # nothing to store: still counted against the rate quota
            groups[0] = []
        share = shared(source, self.cells.count)
        plans = []
        for cell in sorted(groups):
            part = self.parts[cell]
            plans.append(await Storage.accept(part, share, groups[cell], received_ms))
        return merged(plans)

    async def register(self, records: list[Checked]) -> int:
        return await asyncio.to_thread(register_in_cells, records, self.cells)

    async def ping(self) -> bool:
        answers = [await Storage.ping(part) for part in self.parts]
        return all(answers)

    async def close(self) -> None:
        for part in self.parts:
            await Storage.close(part)


def storage_for(settings: Settings) -> Storage:
    """The ingress's storage: its one Redis, or every cell's."""
    cells = cells_of(settings)
    return CellStorage(cells) if cells.count > 1 else Storage(settings.redis_url)
