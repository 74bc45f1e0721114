"""The one mistake cells cannot survive: a list of cells in another order (or with a cell
replaced) sends every message elsewhere, and two workers that disagree forward events to each
other. Each cell's Redis records the list its workers use (addresses only, never a password);
a worker whose list neither extends it nor is a beginning of it (a cell being added or the
last one removed, a rollout either way) refuses to start, saying both."""

from __future__ import annotations

import json

import redis

from worker.cells.cells import Cells
from worker.settings.cells import cell_address
from worker.stores.connection import key, text_of


def list_problem(client: redis.Redis, cells: Cells) -> str | None:
    """Why this worker's RELAY_CELLS cannot serve this cell (None: it can); the cell's record
    of the list grows with it."""
    if cells.count == 1:
        return None  # one cell: nothing to agree on, nothing recorded
    mine = [cell_address(u) for u in cells.urls]
    stored = client.get(key("cells"))
    known: list[str] = json.loads(text_of(stored)) if stored else []
    if mine[: len(known)] == known:
        if len(mine) > len(known):
            client.set(key("cells"), json.dumps(mine))
        return None
    if known[: len(mine)] == mine:
        return None  # an older list during a rollout, or the last cell being removed
    return (
        f"RELAY_CELLS names the cells {mine}, but this cell's Redis has served {known}: cells "
        "are only ever added at the end (a message's cell depends on the order). Give every "
        f"process the same list; if the change is meant, delete {key('cells')} in every cell "
        "after draining them (docs/deploying/cells.md)"
    )
