"""Group commit: the Redis writes of requests in flight at the same moment go in one script
call. A request that finds no write under way starts one at once (no timer, no added wait);
requests that arrive while it runs go together in the next. Under load one round trip and one
reply serve many callbacks; each request is still answered only after its own write
succeeded (with its own result), and a failed write fails every request in it (503, the
providers try again)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
MAX_BATCH = 256  # requests per write at most: bounds one script call's size


class GroupCommit(Generic[Item, Result]):
    """Runs `write(items)` for whatever was submitted since the last write started; `write`
    returns one result per item, in order."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Result]]]) -> None:
        self.write = write
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak ones

    async def submit(self, item: Item) -> Result:
        """Return `item`'s result once it is written; raise what the write raised."""
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if not self._running:
            self._running = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    results = await self.write([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} writes")
                except Exception as exc:  # every request of the batch learns it failed
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for (_, done), result in zip(batch, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            self._running = False
