"""What one ingress process holds for requests in progress, bounded: how many it serves at
once, and how many body bytes it reads at once (as the requests announce them). Past either
bound a request is answered 503 at once (providers retry), so a crowd of slow or hostile
callers costs a known amount of memory and never queues the genuine ones behind them."""

from __future__ import annotations


class Admission:
    """Counts requests and reserved body bytes; single-threaded (one event loop per process),
    so plain integers suffice. Each `enter`/`reserve` that answers True is paired with a
    `leave`/`release` (in a `finally`)."""

    def __init__(self, max_requests: int, max_body_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        self.requests = 0
        self.body_bytes = 0

    def enter(self) -> bool:
        """Whether one more request may be served now (counted when it may)."""
        if self.requests >= self.max_requests:
            return False
        self.requests += 1
        return True

    def leave(self) -> None:
        self.requests -= 1

    def reserve(self, size: int) -> bool:
        """Whether `size` more body bytes may be read now (reserved when they may); held
        while the request is handled (its body lives as long)."""
        if self.body_bytes + size > self.max_body_bytes:
            return False
        self.body_bytes += size
        return True

    def release(self, size: int) -> None:
        self.body_bytes -= size
