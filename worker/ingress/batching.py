"""Group commit: the Redis writes of requests in flight at the same moment go in one script
call. A request that finds no write under way starts one at once (no timer, no added wait);
requests that arrive while it runs go together in the next. Under load one round trip and one
reply serve many callbacks; each request is still answered only after its own write
succeeded, and a failed write fails every request in it (503, the providers try again)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
MAX_BATCH = 256  # requests per write at most: bounds one script call's size


class GroupCommit(Generic[Item]):
    """Runs `write(items)` for whatever was submitted since the last write started."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[None]]) -> None:
        self.write = write
        self._pending: list[tuple[Item, asyncio.Future[None]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak ones

    async def submit(self, item: Item) -> None:
        """Return once `item` is written; raise what the write raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if not self._running:
            self._running = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    await self.write([item for item, _ in batch])
                except Exception as exc:  # every request of the batch learns it failed
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._running = False
