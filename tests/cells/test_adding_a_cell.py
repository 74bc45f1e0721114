"""Adding a fourth cell under load: workers learn the new list (and the list before) one by
one while events keep coming, then producers switch; a message whose history is in its old
cell stays there, a new one goes to its new cell; nothing is lost, nothing posted twice."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cells.test_ways_in import md_posts
from tests.support.cells import CellRelay, redis_servers
from tests.support.harness import CONFIG, event, wait_for
from worker.dev.processes import stop_group
from worker.dev.sandbox import Sandbox
from worker.intake.push import push_events
from worker.settings import get_settings
from worker.stores.counters import Counters, settled_events

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def growing(tmp_path: Any, sandbox: Sandbox) -> Iterator[CellRelay]:
    patch = pytest.MonkeyPatch()
    with redis_servers(4) as urls:
        relay = CellRelay(tmp_path, urls[:3], sandbox.url, patch, CONFIG)
        relay.all_urls = urls  # type: ignore[attr-defined]
        try:
            yield relay
        finally:
            relay.stop_all()
            patch.undo()
            get_settings.cache_clear()


def status(mid: str, name: str, second: int) -> dict[str, Any]:
    return event("md", name, mid, occurred_at=f"2026-11-23T10:00:{second:02d}+00:00")


class Load:
    """A producer pushing `sent` then `delivered` for fresh messages in a thread, until it is
    stopped (or `rounds` of 10 messages: bounded)."""

    def __init__(self, rounds: int) -> None:
        self.rounds, self.mids = rounds, []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for _ in range(self.rounds):
                if self.stop.is_set():
                    return
                batch = [f"ld-{uuid.uuid4().hex[:10]}" for _ in range(10)]
                push_events([status(m, "sent", 1) for m in batch])
                push_events([status(m, "delivered", 2) for m in batch])
                self.mids += batch
                threading.Event().wait(0.05)
        except BaseException as exc:  # said by the test
            self.error = exc


def settled(relay: CellRelay, cells: int) -> int:
    return sum(
        relay.in_cell(c, lambda: settled_events(Counters().snapshot())) for c in range(cells)
    )


def test_adding_a_cell_under_load_loses_nothing_and_posts_nothing_twice(
    growing: CellRelay, sandbox: Sandbox
) -> None:
    relay, urls = growing, growing.all_urls  # type: ignore[attr-defined]
    old = {c: relay.start_cell_worker(c) for c in range(3)}
    early = [f"old-{uuid.uuid4().hex[:10]}" for _ in range(90)]
    assert push_events([status(m, "sent", 1) for m in early]) == 90
    wait_for(lambda: settled(relay, 3) >= 90, 60, "the first statuses delivered")
    moving = [m for m in early if relay.cell_of("md", m) != _cell(m, 4)]
    assert moving, "some messages change cell"

    load = Load(rounds=2000)
    load.thread.start()  # producers (this process) still on three cells while workers roll
    relay.set_cells(urls, before=urls[:3], here=False)  # the workers' new environment
    relay.start_cell_worker(3)
    for cell in range(3):
        stop_group(old[cell])
        relay.start_cell_worker(cell)
    assert load.thread.is_alive(), f"the load outlasts the rollout ({load.error!r})"
    relay.switch_here()  # the producers switch while the load still runs
    assert push_events([status(m, "delivered", 2) for m in early]) == 90
    threading.Event().wait(1.0)
    load.stop.set()
    load.thread.join(timeout=60)
    assert load.error is None and not load.thread.is_alive()
    total = 180 + 2 * len(load.mids)
    wait_for(lambda: settled(relay, 4) >= total, 180, f"{total} events settled")

    posted = md_posts(_view(sandbox), set(early + load.mids))
    for m in early + load.mids:
        assert posted[m] in (["sent", "delivered"], ["delivered"]), (m, posted[m])
        assert len(relay.ledger_cells("md", m)) == 1, m
    for m in moving:  # their history was in the old cell: they stayed there
        assert relay.ledger_cells("md", m) == [_cell(m, 3)]
    assert settled(relay, 4) == total  # nothing twice: every event settled exactly once


def _cell(mid: str, cells: int) -> int:
    from worker.cells.router import cell_of

    return cell_of("md", mid, cells)


class _view:
    """What md_posts reads of a fleet: its sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
