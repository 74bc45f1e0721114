"""A small HTTP/1.1 load generator on asyncio (uvloop when present): keep-alive connections
sending one prepared request over and over, either as fast as answers come (throughput) or on
a fixed schedule (latency, measured from each request's scheduled time so that a slow answer
is not hidden by the requests it delayed). Bounded by a duration; loopback only."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Load:
    """What a run did: answers by status class, latencies in seconds, the wall time."""

    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def prepare(url: str, method: str, headers: dict[str, str], body: bytes) -> bytes:
    """The request's bytes, once."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    url: str, request: bytes, slots: asyncio.Queue[float | None], load: Load
) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while (scheduled := await slots.get()) is not None:
            start = scheduled or time.perf_counter()
            status = await _exchange(reader, writer, request)
            load.latencies.append(time.perf_counter() - start)
            if 200 <= status < 300:
                load.ok += 1
            else:
                load.failed += 1
    finally:
        writer.close()


async def _feed(
    slots: asyncio.Queue[float | None], duration: float, rate: float | None, connections: int
) -> None:
    """Slots to send in: 0.0 (at once) while the queue is low, or scheduled times at `rate`."""
    end = time.perf_counter() + duration
    if rate is None:
        while time.perf_counter() < end:
            while slots.qsize() < connections * 2:
                slots.put_nowait(0.0)
            await asyncio.sleep(0.001)
    else:
        interval, due = 1.0 / rate, time.perf_counter()
        while due < end:
            now = time.perf_counter()
            while due <= now:
                slots.put_nowait(due)
                due += interval
            await asyncio.sleep(max(0.0, min(due - time.perf_counter(), 0.001)))
    for _ in range(connections):
        slots.put_nowait(None)


async def _run(
    url: str, request: bytes, connections: int, duration: float, rate: float | None
) -> Load:
    load = Load()
    slots: asyncio.Queue[float | None] = asyncio.Queue()
    started = time.perf_counter()
    workers = [
        asyncio.create_task(_connection(url, request, slots, load)) for _ in range(connections)
    ]
    await _feed(slots, duration, rate, connections)
    await asyncio.wait_for(asyncio.gather(*workers), timeout=duration + 30)
    load.seconds = time.perf_counter() - started
    return load


def run(
    url: str, request: bytes, connections: int, duration: float, rate: float | None = None
) -> Load:
    """Send `request` to `url` on `connections` keep-alive connections for `duration` seconds,
    as fast as possible (rate None) or `rate` requests a second in all."""
    try:
        import uvloop

        return uvloop.run(_run(url, request, connections, duration, rate))
    except ImportError:
        return asyncio.run(_run(url, request, connections, duration, rate))
