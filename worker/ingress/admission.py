"""What one ingress process holds for requests in progress, bounded: how many it serves at
once, and how many body bytes it reads at once (as the requests announce them). Past either
bound a request is answered 503 at once (providers retry), so a crowd of slow or hostile
callers costs a known amount of memory and never queues the genuine ones behind them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Admission:
    """Counts requests and reserved body bytes; single-threaded (one event loop per process),
    so plain integers suffice."""

    def __init__(self, max_requests: int, max_body_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        self.requests = 0
        self.body_bytes = 0

    @contextmanager
    def request(self) -> Iterator[bool]:
        """Whether the request may be served now (yields False past the bound); held until
        the block ends."""
        if self.requests >= self.max_requests:
            yield False
            return
        self.requests += 1
        try:
            yield True
        finally:
            self.requests -= 1

    @contextmanager
    def body(self, size: int) -> Iterator[bool]:
        """Whether `size` more body bytes may be read now (yields False when they do not fit);
        held until the block ends (the body lives as long as its request is handled)."""
        if self.body_bytes + size > self.max_body_bytes:
            yield False
            return
        self.body_bytes += size
        try:
            yield True
        finally:
            self.body_bytes -= size
