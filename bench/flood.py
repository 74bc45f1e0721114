"""`python -m bench.flood URL`: clients posting unauthenticated 1 MiB bodies to an ingress as
fast as it answers, each body new (so no cache could serve one twice), each on a connection of
its own: a bogus Twilio signature, one shaped like Twilio's, one shaped like Meta's (its body
must be read and hashed), no Infobip token (and, when named, a Vonage token that is no JWT).
The flood of `make bench`'s ingress row and of `tests/ingress/test_hostile_edge.py`. Loopback
only; bounded by `--seconds`."""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

MIB = 1 << 20
FORM = "application/x-www-form-urlencoded"
TWILIO_SHAPED = "A" * 27 + "="  # base64 of 20 bytes, as an HMAC-SHA1 is
META_SHAPED = "sha256=" + "0" * 64
BODY = b"a=1&" * (MIB // 4)  # a form of 262,144 fields


def head(
    method: str, path: str, headers: dict[str, str] | None = None, length: int | None = None
) -> bytes:
    """A request's line and headers (Content-Length `length` when given), ready to send."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def heads(
    twilio: str = "tw",
    whatsapp: str | None = "wa",
    infobip: str | None = "ib",
    vonage: str | None = None,
) -> list[bytes]:
    """The flood's request heads for the named sources (None leaves a kind out)."""
    found = [
        head(
            "POST",
            f"/v1/receipts/{twilio}",
            {"X-Twilio-Signature": "bogus", "Content-Type": FORM},
            MIB,
        ),
        head("POST", f"/v1/receipts/{twilio}", {"X-Twilio-Signature": TWILIO_SHAPED}, MIB),
    ]
    if whatsapp:
        found.append(
            head("POST", f"/v1/receipts/{whatsapp}", {"X-Hub-Signature-256": META_SHAPED}, MIB)
        )
    if infobip:
        found.append(
            head("POST", f"/v1/receipts/{infobip}", {"Content-Type": "application/json"}, MIB)
        )
    if vonage:  # a Bearer token that is not a JWT
        found.append(head("POST", f"/v1/receipts/{vonage}", {"Authorization": "Bearer a.b.c"}, MIB))
    return found


def unique_body() -> bytes:
    """BODY with a prefix of its own: no two posts alike."""
    prefix = f"n={uuid.uuid4().hex}&".encode()
    return prefix + BODY[len(prefix) :]


def _answered(sock: socket.socket) -> bool:
    """Reads until the answer's head is in (or the server closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


def client(address: tuple[str, int], requests: list[bytes], until: float, sent: list[int]) -> None:
    """Post `requests` in turn, each with a new 1 MiB body on a new connection, until `until`."""
    turn = 0
    while time.monotonic() < until:
        try:
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(requests[turn % len(requests)] + unique_body())
                _answered(sock)
        except OSError:
            pass  # a refused body may be cut off while it is still being sent
        turn += 1
        sent.append(1)


def flood(address: tuple[str, int], requests: list[bytes], seconds: float, clients: int = 4) -> int:
    """`clients` threads flooding for `seconds`; the number of posts they made."""
    until = time.monotonic() + seconds
    sent: list[int] = []
    threads = [
        threading.Thread(target=client, args=(address, requests, until, sent))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return len(sent)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    parser.add_argument("url", help="the ingress, e.g. http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--twilio", default="tw")
    parser.add_argument("--whatsapp", default="wa")
    parser.add_argument("--infobip", default="ib")
    args = parser.parse_args()
    parts = urlsplit(args.url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("bench.flood: loopback targets only")
    requests = heads(args.twilio, args.whatsapp or None, args.infobip or None)
    posts = flood((parts.hostname, parts.port or 80), requests, args.seconds, args.clients)
    print(json.dumps({"posts": posts, "seconds": args.seconds, "clients": args.clients}))


if __name__ == "__main__":
    main()
