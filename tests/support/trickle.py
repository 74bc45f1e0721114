"""A local HTTP server that answers as slowly as a hostile target: a byte at a time, or never
reading what it is sent. For the outbound deadline's tests."""

from __future__ import annotations

import socket
import threading
import time

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: "
    + b"p" * 40
    + b"\r\nContent-Length: 2\r\n\r\n{}"
)


class TrickleServer:
    """Serves on 127.0.0.1. Per connection, in `mode`:
    - "head": reads the request, then sends ANSWER one byte every `pause` seconds (the status
      line and headers trickle, so no single read waits long);
    - "body": sends the status line and headers at once, then the body a byte at a time, with
      a Content-Length far beyond what it sends;
    - "deaf": reads nothing at all (a large request fills the buffers and the sender blocks);
    - "quick": answers ANSWER at once, keeping the connection alive."""

    def __init__(self, mode: str = "head", pause: float = 0.1) -> None:
        self.mode = mode
        self.pause = pause
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        with conn:
            try:
                if self.mode == "deaf":
                    self._stop.wait(30)
                    return
                while self._read_request(conn) and not self._stop.is_set():
                    self._answer(conn)
            except OSError:
                return  # the client gave up: what these tests want

    def _read_request(self, conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        return True

    def _answer(self, conn: socket.socket) -> None:
        if self.mode == "quick":
            conn.sendall(ANSWER)
            return
        if self.mode == "body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        data = ANSWER if self.mode == "head" else b"x" * 1000
        for byte in data:
            if self._stop.wait(self.pause):
                return
            conn.sendall(bytes([byte]))

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        time.sleep(0.05)
