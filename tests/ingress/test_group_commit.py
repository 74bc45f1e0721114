"""Group commit: requests in flight together share one Redis write, and each is answered only
after its own write (asyncio alone, then many concurrent callbacks through a real ingress)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.ingress.conftest import Stack, mid
from tests.support.ingress import sf_reference
from worker.dev.callbacks import Message
from worker.ingress.batching import GroupCommit
from worker.stores.counters import Counters


def test_requests_that_arrive_while_a_write_runs_go_together_in_the_next() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    async def main() -> list[int]:
        commit: GroupCommit[int, int] = GroupCommit(write)
        results = await asyncio.gather(*(commit.submit(i) for i in range(5)))
        return [*results, await commit.submit(5)]

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50]  # each request gets its own result
    assert writes == [[0, 1, 2, 3, 4], [5]]


def test_a_failed_write_fails_every_request_in_it_and_the_next_write_still_runs() -> None:
    calls: list[list[str]] = []

    async def write(items: list[str]) -> list[None]:
        calls.append(items)
        if "bad" in items:
            raise ConnectionError("Redis went away")
        return [None] * len(items)

    async def main() -> list[BaseException | None]:
        commit: GroupCommit[str, None] = GroupCommit(write)
        results = await asyncio.gather(
            commit.submit("bad"), commit.submit("x"), return_exceptions=True
        )
        await commit.submit("after")
        return list(results)

    first, second = asyncio.run(main())
    assert isinstance(first, ConnectionError) and isinstance(second, ConnectionError)
    assert calls[-1] == ["after"]


@pytest.mark.timeout(120)
def test_many_concurrent_callbacks_are_each_stored_once_and_delivered(stack: Stack) -> None:
    mids = [mid("burst") for _ in range(120)]
    before = Counters(family="receipts").snapshot().get("tw", {}).get("accepted", 0)
    callbacks = [
        stack.ingress.callback(
            "tw", Message("SM" + m, "failed", error_code="30008", reference=sf_reference(m))
        )
        for m in mids
    ]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(stack.ingress.send, callbacks))
    assert all(status == 200 for status, _ in answers)
    assert Counters(family="receipts").snapshot()["tw"]["accepted"] == before + len(mids)
    stack.wait_posted(*mids, timeout=90)
