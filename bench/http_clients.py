"""HTTP clients side by side against the bench's nginx (`python -m bench.http_clients`): what one
request costs each, in wall time and in this process's CPU, so the relay's client is chosen by
measurement. Every client posts the same ~300-byte JSON body to the at-once server over
keep-alive connections, `--requests` times (20,000), in `--runs` runs (3), medians; a client
that is not installed is listed as such. Losers stay in the table (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.targets import start_target

BODY = b'{"object":"page","entry":[{"id":"p","time":1700000000,"messaging":[' + b"0" * 220 + b"]}]}"
PATH = "/medallia/apis/v0/channels/c/messages"
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench-token"}
IN_FLIGHT = 32  # requests in flight at once for the concurrent clients


def urllib3_threads(url: str, n: int) -> None:
    import urllib3

    pool = urllib3.connection_from_url(url, maxsize=IN_FLIGHT, block=False, retries=False)

    def one(_: int) -> None:
        assert pool.urlopen("POST", PATH, body=BODY, headers=HEADERS, retries=False).status == 200

    with ThreadPoolExecutor(IN_FLIGHT) as threads:
        list(threads.map(one, range(n)))


def urllib3_one_thread(url: str, n: int) -> None:
    import urllib3

    pool = urllib3.connection_from_url(url, maxsize=1, retries=False)
    for _ in range(n):
        assert pool.urlopen("POST", PATH, body=BODY, headers=HEADERS, retries=False).status == 200


def requests_one_thread(url: str, n: int) -> None:
    import requests

    session = requests.Session()
    for _ in range(n):
        assert session.post(url + PATH, data=BODY, headers=HEADERS).status_code == 200


def _easy(url: str) -> object:
    import pycurl

    easy = pycurl.Curl()
    easy.setopt(pycurl.URL, url + PATH)
    easy.setopt(pycurl.POSTFIELDS, BODY)
    easy.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in HEADERS.items()])
    easy.setopt(pycurl.TIMEOUT_MS, 5000)
    easy.setopt(pycurl.NOSIGNAL, 1)
    return easy


def pycurl_easy_one_thread(url: str, n: int) -> None:
    import pycurl

    easy = _easy(url)
    for _ in range(n):
        out = io.BytesIO()
        easy.setopt(pycurl.WRITEDATA, out)  # type: ignore[attr-defined]
        easy.perform()  # type: ignore[attr-defined]
        assert easy.getinfo(pycurl.RESPONSE_CODE) == 200  # type: ignore[attr-defined]


def pycurl_multi(url: str, n: int) -> None:
    import pycurl

    multi = pycurl.CurlMulti()
    idle = [_easy(url) for _ in range(IN_FLIGHT)]
    started = done = 0
    while done < n:
        while idle and started < n:
            easy = idle.pop()
            easy.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)  # type: ignore[attr-defined]
            multi.add_handle(easy)
            started += 1
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, ok, failed = multi.info_read()
            for easy in ok + [f[0] for f in failed]:
                multi.remove_handle(easy)
                idle.append(easy)
                done += 1
            if not queued:
                break
        if done < n:
            multi.select(0.1)


def aiohttp_tasks(url: str, n: int) -> None:
    import aiohttp

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:
            left = iter(range(n))

            async def worker() -> None:
                for _ in left:
                    async with session.post(url + PATH, data=BODY, headers=HEADERS) as answer:
                        assert answer.status == 200
                        await answer.read()

            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def httpcore_threads(url: str, n: int) -> None:
    import httpcore

    pool = httpcore.ConnectionPool(max_connections=IN_FLIGHT)

    def one(_: int) -> None:
        pool.request("POST", url + PATH, headers=HEADERS, content=BODY)

    with ThreadPoolExecutor(IN_FLIGHT) as threads:
        list(threads.map(one, range(n)))


CLIENTS: dict[str, Callable[[str, int], None]] = {
    "urllib3, 32 threads": urllib3_threads,
    "urllib3, one thread": urllib3_one_thread,
    "requests Session, one thread": requests_one_thread,
    "pycurl easy, one thread": pycurl_easy_one_thread,
    "pycurl multi, 32 in flight, one thread": pycurl_multi,
    "aiohttp on uvloop, 32 in flight": aiohttp_tasks,
    "httpcore, 32 threads": httpcore_threads,
}


def measure(client: Callable[[str, int], None], url: str, n: int) -> tuple[float, float]:
    """Wall and CPU microseconds per request (this process, every thread)."""
    wall, cpu = time.perf_counter(), time.process_time()
    client(url, n)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    target = start_target(2)
    try:
        url = target.url("fast")
        print(
            f"{threading.active_count()} thread(s); target {target.kind}; {args.requests} requests"
        )
        print("| client | wall us/request | CPU us/request |\n|---|---|---|")
        for name, client in CLIENTS.items():
            try:
                client(url, 50)  # warm up: imports, connections
            except ImportError as exc:
                print(f"| {name} | not installed ({exc.name}) | |")
                continue
            runs = [measure(client, url, args.requests) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"| {name} | {wall:.1f} | {cpu:.1f} |", flush=True)
    finally:
        target.stop()


if __name__ == "__main__":
    main()
