"""The interface every target kind implements, and the helpers its config checks share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tasks.events import Event
from tasks.outbound import Merged, OutboundRequest, Skip


class TargetKind(Protocol):
    """A kind of target API: how its config section is read and how an event is translated."""

    name: str
    auth_types: frozenset[str]

    def parse_options(self, table: Mapping[str, Any], where: str) -> tuple[Any, list[str]]:
        """Read the kind-specific keys of a target table; return (options, problems)."""
        ...

    def translate(self, event: Event, options: Any) -> list[OutboundRequest] | Skip:
        """Turn an event into requests (pure); raise NotDeliverable if it cannot be expressed."""
        ...

    def coalesce(self, requests: Sequence[OutboundRequest]) -> list[Merged]:
        """Merge translated requests (of several events) into as few as the API allows (pure)."""
        ...


def required_text(table: Mapping[str, Any], key: str, where: str, problems: list[str]) -> str:
    """Fetch a required non-empty string from a config table, recording a problem if absent."""
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}.{key}: required, a non-empty string")
        return ""
    return value.strip()


def join_url(base_url: str, path: str) -> str:
    """Join a base URL and an absolute path without doubling or losing the slash."""
    return base_url.rstrip("/") + path
