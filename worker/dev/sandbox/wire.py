"""Writing an answer on the wire: whole, truncated, trickled forever, or not at all."""

from __future__ import annotations

import contextlib
import html
import socket
import threading
from http.server import BaseHTTPRequestHandler

# The Content-Length a trickled answer announces: far more than will ever be sent.
TRICKLE_LENGTH = 10**9


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    """Send a complete answer."""
    _head(handler, status, content_type, len(body), headers)
    handler.wfile.write(body)


def truncated(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    """Announce the whole body, send only its first half, then close the connection."""
    sent = body[: len(body) // 2]
    handler.close_connection = True
    _head(handler, status, content_type, max(len(body), len(sent) + 1), headers)
    with contextlib.suppress(OSError):  # the client may already have given up
        handler.wfile.write(sent)
        handler.wfile.flush()


def trickle(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    body: bytes,
    headers: dict[str, str],
    *,
    every: float,
    stop: threading.Event,
) -> None:
    """Announce a huge body, then send it one byte every `every` seconds, never finishing.

    The body's bytes come first, then spaces. It ends when the client goes away (a write fails)
    or when `stop` is set (the sandbox stops).
    """
    handler.close_connection = True
    with contextlib.suppress(OSError):
        _head(handler, status, content_type, TRICKLE_LENGTH, headers)
        sent = 0
        while True:
            handler.wfile.write(body[sent : sent + 1] or b" ")
            sent += 1
            if stop.wait(every):
                return


def drop(handler: BaseHTTPRequestHandler) -> None:
    """Shut the socket down without a byte of answer, as a crashed proxy would."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


def redirect_page(location: str) -> bytes:
    """The small HTML page a web server sends along with a redirect."""
    href = html.escape(location, quote=True)
    return (
        "<html><head><title>Moved</title></head><body><h1>Moved</h1>"
        f'<p>The document has moved <a href="{href}">here</a>.</p></body></html>'
    ).encode()


def _head(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    length: int,
    headers: dict[str, str],
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(length))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
