"""Stand-in target when nginx cannot be installed: the same three servers in asyncio.

`python -m bench.pytarget DIR WORKERS FAST SLOW PARKED` forks WORKERS processes sharing each
port (SO_REUSEPORT), like nginx's workers. HTTP/1.1 keep-alive with Content-Length bodies only,
which is all the relay, the loops and `requests` send. It logs latency-tagged requests in the
nginx format the bench reads (`$msec $request_time $request_body`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

from bench.targets import SF_INTERACTION

OK = b'{"success":true}'


def _answer(server: str, path: str) -> tuple[int, bytes, bytes]:
    if server == "parked":
        return 503, b"Retry-After: 3600\r\n", b"overloaded, come back later"
    if path == "/salesforce/api/v1/interactions":
        return 202, b"", SF_INTERACTION.encode()
    if path.startswith("/salesforce/api/v1/") or path.startswith("/medallia/apis/v0/channels/"):
        return 200, b"", OK
    return 404, b"", b'{"error":"not found"}'


class Handler:
    def __init__(self, server: str, log: Path) -> None:
        self.server = server
        self.log = log

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                started = time.time()
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                if self.server == "slow":
                    await asyncio.sleep(0.05)
                status, extra, payload = _answer(self.server, path.split("?")[0])
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %d"
                    b"\r\n\r\n%s" % (status, extra, len(payload), payload)
                )
                await writer.drain()
                if self.server == "fast" and b"lat-" in body:
                    ended = time.time()
                    text = body.decode(errors="replace").replace("\r", "\\r").replace("\n", "\\n")
                    with self.log.open("a") as out:  # one line a request, as nginx escapes it
                        out.write(f"{ended:.6f} {ended - started:.6f} {text}\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(directory: Path, ports: dict[str, int]) -> None:
    servers = []
    for name, port in ports.items():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        servers.append(
            await asyncio.start_server(Handler(name, directory / "latency.log"), sock=sock)
        )
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    directory, workers = Path(sys.argv[1]), int(sys.argv[2])
    ports = dict(zip(("fast", "slow", "parked"), map(int, sys.argv[3:6]), strict=True))
    for _ in range(workers - 1):
        if os.fork() == 0:
            break  # children serve too; the group is stopped as one by the bench
    asyncio.run(serve(directory, ports))


if __name__ == "__main__":
    main()
