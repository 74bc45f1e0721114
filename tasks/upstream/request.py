"""The raw callback a provider made, exactly as received: what signatures are checked over."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tasks.upstream.receipts import Unreadable

MAX_FORM_FIELDS = 256
"""Fields a form body may have (a provider's callback has a few dozen); past it the body is
refused before it is parsed (RELAY_INGRESS_MAX_FORM_FIELDS sets it for the ingress)."""


@dataclass(frozen=True, slots=True)
class RawRequest:
    """One HTTP request as the provider sent it. `url` is the URL as the provider called it
    (scheme, host, path and query); header names are compared without regard to case."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    max_fields: int = MAX_FORM_FIELDS
    # The body's form, parsed once for this request: the signature check and the normalizer
    # share it, and it goes when the request goes (nothing of one request outlives it).
    _form: list[tuple[tuple[str, str], ...]] = field(
        default_factory=list, init=False, compare=False, repr=False
    )

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes = b"",
        max_fields: int = MAX_FORM_FIELDS,
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
            max_fields,
        )

    def with_body(self, body: bytes) -> RawRequest:
        """This request with `body` (its head judged first, the body read after)."""
        return RawRequest(self.method, self.url, self.headers, self.query, body, self.max_fields)

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

    def form(self) -> tuple[tuple[str, str], ...]:
        """The body's form fields (application/x-www-form-urlencoded), in order; `Unreadable`
        when it is not UTF-8 or has more than `max_fields` fields (counted before parsing)."""
        if not self._form:
            try:
                self._form.append(form_pairs(self.text(), self.max_fields))
            except ValueError as exc:
                raise Unreadable(f"the body is not a form: {exc}") from None
        return self._form[0]

    def json(self) -> Any:
        """The body as JSON; `Unreadable` when it is not (or is nested absurdly deep)."""
        text = self.text()
        try:
            return json.loads(text)
        except ValueError as exc:
            raise Unreadable(f"the body is not JSON: {exc}") from None
        except RecursionError:
            raise Unreadable("the body is JSON nested too deeply to be a callback") from None


def form_pairs(text: str, max_fields: int | None = None) -> tuple[tuple[str, str], ...]:
    """Form-encoded text as (name, value) pairs, blank values kept; ValueError past
    `max_fields` fields (counted by their separators, before anything is parsed)."""
    if max_fields is not None and text.count("&") >= max_fields:
        raise ValueError(f"more than {max_fields} fields")
    # What parse_qsl(text, keep_blank_values=True) gives, in half its time (a callback's form
    # and query are parsed on every request): '&'-separated, '+' a space, %-escapes as UTF-8.
    return tuple(
        (unquote(name.replace("+", " ")), unquote(value.replace("+", " ")))
        for name, _, value in (field.partition("=") for field in text.split("&") if field)
    )
