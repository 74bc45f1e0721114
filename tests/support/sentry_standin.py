"""A local stand-in for Sentry's ingest endpoint: records every envelope the SDK sends."""

from __future__ import annotations

import gzip
import json
import threading
from email.message import Message
from typing import Any

from tests.support.json_endpoint import JsonEndpoint


class SentryStandIn(JsonEndpoint):
    """Accepts `POST /api/<project>/envelope/` and keeps the decoded items."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        super().__init__()

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, Any]:
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with self._lock:
            self.raw.append(body)
        return 200, {}

    @property
    def dsn(self) -> str:
        return self.base.replace("http://", "http://publickey@") + "/1"

    def start(self) -> SentryStandIn:
        """Already serving; kept so that tests read `SentryStandIn().start()`."""
        return self

    def events(self) -> list[dict[str, Any]]:
        """The error events received (envelope items of type `event`)."""
        found = []
        with self._lock:
            bodies = list(self.raw)
        for body in bodies:
            lines = body.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if header.strip() and json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def everything(self) -> bytes:
        with self._lock:
            return b"\n".join(self.raw)
