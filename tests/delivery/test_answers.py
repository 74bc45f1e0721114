"""The answer book on a real Redis: answers from hundreds of HTTP threads at once cost no
connection of their own and a few round trips; marks noted while Redis is paused are written
when it answers; the circuit breaker's outcomes ride along, collapsed per target."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from tests.support.harness import own_key_prefix
from worker.delivery.answers import AnswerBook, Sheet
from worker.dev.local_redis import LocalRedis
from worker.stores.breaker import BreakerPolicy, CircuitBreaker
from worker.stores.ledger import Done, EventLedger, message_key

pytestmark = pytest.mark.timeout(30)
THREADS = 256


@pytest.fixture
def own_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = LocalRedis().start()
    with own_key_prefix(server.url, monkeypatch, "t-answers"):
        yield server.url
    server.stop()


def _book(url: str, connections: int, threshold: int = 20) -> tuple[AnswerBook, redis.Redis]:
    client = redis.Redis.from_url(url, decode_responses=True, max_connections=connections)
    breaker = CircuitBreaker(BreakerPolicy(threshold=threshold, cooldown=1.0), client)
    return AnswerBook(EventLedger(client), breaker), client


def _calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)) if isinstance(stats, dict) else 0


def test_256_answers_at_once_need_no_connection_and_a_few_round_trips(own_redis: str) -> None:
    # given a book whose Redis client has 2 connections, and 256 HTTP threads whose answers
    # (14 failures of the target, then acceptances) all come at once
    book, client = _book(own_redis, connections=2)
    sheet, start = Sheet(), threading.Barrier(THREADS)

    def answer(i: int) -> None:
        start.wait()
        book.heard("t", failed=i < 14)
        book.note(sheet, [Done("t", f"e{i}", (f"m{i}",), (1, "delivered"), owner="env")])

    before = _calls(client, "evalsha")
    threads = [threading.Thread(target=answer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every mark is written, in a handful of script calls, and nothing failed
    assert book.drain(5)
    marks = [client.hget(message_key("t", f"m{i}"), f"e:e{i}") for i in range(THREADS)]
    assert all(m and m.startswith("d") for m in marks)
    assert _calls(client, "evalsha") - before <= 10


def test_marks_noted_while_redis_is_paused_are_written_when_it_answers(own_redis: str) -> None:
    # given Redis paused for 600 ms
    book, client = _book(own_redis, connections=4)
    admin = redis.Redis.from_url(own_redis)
    admin.execute_command("CLIENT", "PAUSE", 600, "ALL")
    sheet = Sheet()

    # when answers are noted meanwhile, and their bundle settles
    started = time.monotonic()
    book.note(sheet, [Done("t", "e1", ("m1",), owner="env")])
    time.sleep(0.1)  # the book's thread has taken it and waits on Redis
    book.note(sheet, [Done("t", "e2", ("m2",), owner="env")])
    taken = book.take_back(sheet)

    # then the bundle waited for the mark on its way and took back the other one to write
    # itself; the first was written once Redis answered
    assert time.monotonic() - started >= 0.4
    assert [m.event_id for m in taken] == ["e2"]
    assert client.hget(
        message_key("t", "m1"),
        "e:e1",
    ).startswith("d")  # type: ignore[union-attr]
    admin.close()


def test_a_probes_success_closes_the_circuit(own_redis: str) -> None:
    # given a circuit opened by one failure (threshold 1) whose cool-down ended
    book, client = _book(own_redis, connections=4, threshold=1)
    book.heard("t", failed=True)
    assert book.drain(2)
    assert book.breaker.acquire("t") is not None
    time.sleep(1.1)

    # when this worker takes the probe and the target answers it
    assert book.breaker.acquire("t") is None
    book.heard("t", failed=False)
    assert book.drain(2)

    # then the circuit is closed for every worker
    other = CircuitBreaker(BreakerPolicy(threshold=1, cooldown=1.0), client)
    assert other.acquire("t") is None
