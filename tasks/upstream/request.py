"""The raw callback a provider made, exactly as received: what signatures are checked over."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from tasks.upstream.receipts import Unreadable


@dataclass(frozen=True, slots=True)
class RawRequest:
    """One HTTP request as the provider sent it. `url` is the URL as the provider called it
    (scheme, host, path and query); header names are compared without regard to case."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> RawRequest:
        """A request from a URL (its query parsed) and headers in any case."""
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        _, _, query = url.partition("?")
        return cls(
            method.upper(),
            url,
            tuple((name.lower(), value) for name, value in pairs),
            form_pairs(query.partition("#")[0]),
            body,
        )

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def query_value(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        return next((value for key, value in self.query if key == name), None)

    @property
    def content_type(self) -> str:
        """The media type alone, lower case ("application/json"), or ""."""
        return (self.header("content-type") or "").partition(";")[0].strip().lower()

    def text(self) -> str:
        """The body as UTF-8 text; `Unreadable` when it is not."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unreadable(f"the body is not UTF-8 text (byte {exc.start} is not)") from None

    def form(self) -> list[tuple[str, str]]:
        """The body's form fields (application/x-www-form-urlencoded), in order."""
        try:
            return list(form_pairs(self.text()))
        except ValueError as exc:
            raise Unreadable(f"the body is not a form: {exc}") from None

    def json(self) -> Any:
        """The body as JSON; `Unreadable` when it is not (or is nested absurdly deep)."""
        text = self.text()
        try:
            return json.loads(text)
        except ValueError as exc:
            raise Unreadable(f"the body is not JSON: {exc}") from None
        except RecursionError:
            raise Unreadable("the body is JSON nested too deeply to be a callback") from None


@lru_cache(maxsize=64)
def form_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """Form-encoded text as (name, value) pairs, blank values kept. Cached: the signature
    check and the normalizer read the same body (and query) of one request."""
    return tuple(parse_qsl(text, keep_blank_values=True))
