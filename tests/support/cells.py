"""Cells on one machine for tests: a redis-server per cell (started and stopped here), one
relay environment naming them all in RELAY_CELLS, and a worker per cell."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from tests.support.harness import CONFIG, Relay
from worker.cells.cells import Cells, get_cells
from worker.cells.router import cell_of
from worker.dev.local_redis import LocalRedis
from worker.settings import get_settings
from worker.stores.connection import key

T = TypeVar("T")


@contextmanager
def redis_servers(count: int) -> Iterator[list[str]]:
    """`count` redis-servers of the test's own, their URLs; stopped after."""
    servers: list[LocalRedis] = []
    try:
        for _ in range(count):
            servers.append(LocalRedis().start())
        yield [s.url for s in servers]
    finally:
        for server in servers:
            server.stop()


class CellRelay(Relay):
    """One relay over several cells: RELAY_CELLS in its environment (and this process's)."""

    def __init__(
        self,
        tmp: Path,
        urls: list[str],
        sandbox_url: str,
        monkeypatch: pytest.MonkeyPatch,
        config: str = CONFIG,
    ) -> None:
        super().__init__(tmp, urls[0], sandbox_url, monkeypatch, config)
        self.urls = list(urls)
        self.monkeypatch = monkeypatch
        self.set_cells(urls)

    def set_cells(
        self, urls: list[str], before: list[str] | None = None, *, here: bool = True
    ) -> None:
        """Name the cells (and, while one is being added, the list before) for the processes
        started from now on, and (`here`) for this process's pushes and reads."""
        self.env["RELAY_CELLS"] = ",".join(urls)
        self.env.pop("RELAY_CELLS_BEFORE", None)
        if before:
            self.env["RELAY_CELLS_BEFORE"] = ",".join(before)
        self.urls = list(urls)
        if here:
            self.switch_here()

    def switch_here(self) -> None:
        """This process (a producer, an operator) takes the processes' list of cells."""
        self.monkeypatch.setenv("RELAY_CELLS", self.env["RELAY_CELLS"])
        if "RELAY_CELLS_BEFORE" in self.env:
            self.monkeypatch.setenv("RELAY_CELLS_BEFORE", self.env["RELAY_CELLS_BEFORE"])
        else:
            self.monkeypatch.delenv("RELAY_CELLS_BEFORE", raising=False)
        get_settings.cache_clear()

    @property
    def cells(self) -> Cells:
        return get_cells()

    def start_cell_worker(self, cell: int, concurrency: int = 4) -> subprocess.Popen[bytes]:
        """A worker serving `cell` (its REDIS_URL is that cell's)."""
        shared = self.env
        self.env = {**shared, "REDIS_URL": self.urls[cell]}
        try:
            return self.start_worker(f"cell{cell}", concurrency)
        finally:
            self.env = shared

    def in_cell(self, cell: int, read: Callable[[], T]) -> T:
        """What `read` finds with the stores of `cell`."""
        with self.cells.inside(cell):
            return read()

    def in_every_cell(self, read: Callable[[], T]) -> list[T]:
        return [self.in_cell(cell, read) for cell in range(len(self.urls))]

    def client(self, cell: int) -> redis.Redis:
        return redis.Redis.from_url(self.urls[cell], decode_responses=True)

    def ledger_cells(self, target: str, message_id: str) -> list[int]:
        """The cells whose ledger holds the message."""
        name = key("msg", target, message_id)
        return [cell for cell in range(len(self.urls)) if self.client(cell).exists(name)]

    def cell_of(self, target: str, message_id: str) -> int:
        return cell_of(target, message_id, len(self.urls))

    def rpush(self, cell: int, *texts: str) -> None:
        """Push onto a cell's inbox as a producer in another language would."""
        self.client(cell).rpush(key("inbox"), *texts)

    def cli_json(self, *args: str) -> Any:
        import json

        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
