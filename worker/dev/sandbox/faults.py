"""The sandbox's shared state: faults it is told to show, and the requests it recorded.

Faults are error statuses, retry requests, dropped connections, delays, replaced bodies,
redirects, truncated answers and bodies that trickle in forever.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

APIS = ("salesforce", "medallia", "any")

# Expected Python type(s) of each Fault field when it arrives as JSON; None is allowed where the
# field's default is None. bool is a subclass of int, so it is ruled out separately below.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "api": (str,),
    "status": (int,),
    "times": (int,),
    "retry_after": (str,),
    "body": (str,),
    "content_type": (str,),
    "drop": (bool,),
    "delay": (int, float),
    "match": (str,),
    "trickle": (int, float),
    "redirect": (str,),
    "truncate": (bool,),
}
_NULLABLE = frozenset({"status", "retry_after", "body", "content_type", "match", "redirect"})
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Fault:
    """One rule for answering matching vendor requests differently from the real API.

    `status` replaces the normal answer (the request is still checked and recorded); `times`
    is how many matching requests the rule applies to (0 means forever); `drop` closes the
    connection without answering; `delay` waits before answering; `match` limits the rule to
    requests whose raw body contains that substring.

    `trickle` (seconds) sends the status line and headers with a huge Content-Length, then the
    body one byte every `trickle` seconds until the client goes away or the sandbox stops;
    `redirect` answers `status` (a 3xx) with this `Location`; `truncate` declares a longer
    Content-Length than the body it sends, then closes the connection.
    """

    api: str = "any"
    status: int | None = None
    times: int = 1
    retry_after: str | None = None
    body: str | None = None
    content_type: str | None = None
    drop: bool = False
    delay: float = 0.0
    match: str | None = None
    trickle: float = 0.0
    redirect: str | None = None
    truncate: bool = False

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("invalid fault: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Say what is inconsistent about this fault, so a bad rule is refused when added."""
        problems: list[str] = []
        if self.api not in APIS:
            problems.append(f"api must be one of {', '.join(APIS)}, got {self.api!r}")
        if self.status is not None and not 100 <= self.status <= 599:
            problems.append(f"status must be an HTTP status between 100 and 599, got {self.status}")
        if self.times < 0:
            problems.append(f"times must be 0 (forever) or more, got {self.times}")
        if self.delay < 0:
            problems.append(f"delay must be 0 or more seconds, got {self.delay}")
        if self.drop and self.status is not None:
            problems.append("drop and status cannot both be set: a dropped request gets no answer")
        if self.status is None and (self.body is not None or self.content_type is not None):
            problems.append("body and content_type need a status to answer with")
        return problems + self._answer_problems()

    def _answer_problems(self) -> list[str]:
        """Problems with the ways of spoiling an answer: trickle, redirect, truncate."""
        problems: list[str] = []
        if self.trickle < 0:
            problems.append(f"trickle must be 0 or more seconds, got {self.trickle}")
        spoilers = [name for name in ("drop", "trickle", "truncate") if getattr(self, name)]
        if len(spoilers) > 1:
            problems.append(f"{' and '.join(spoilers)} cannot be combined: pick one")
        if self.redirect is not None:
            if self.status not in REDIRECT_STATUSES:
                codes = ", ".join(map(str, REDIRECT_STATUSES))
                problems.append(f"redirect needs a status of {codes}, got {self.status}")
            if not self.redirect.strip() or any(c in self.redirect for c in "\r\n"):
                problems.append(f"redirect must be a one-line URL, got {self.redirect!r}")
            if self.trickle:
                problems.append("redirect and trickle cannot be combined: pick one")
        return problems

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Build a fault from its JSON form, refusing unknown keys and wrong types."""
        if not isinstance(data, dict):
            raise ValueError(f"a fault must be a JSON object, got {type(data).__name__}")
        problems = [f"unknown key {key!r}" for key in data if key not in _FIELD_TYPES]
        for key, value in data.items():
            if key in _FIELD_TYPES:
                problems.extend(_type_problems(key, value))
        if problems:
            raise ValueError("invalid fault: " + "; ".join(problems))
        values = dict(data)
        for key in ("delay", "trickle"):
            if key in values:
                values[key] = float(values[key])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Give the JSON form accepted by `from_json`."""
        return dataclasses.asdict(self)

    def applies_to(self, api: str, body: bytes) -> bool:
        """Tell whether this fault concerns a request to `api` with this raw body."""
        if self.api not in ("any", api):
            return False
        return self.match is None or self.match.encode() in body


def _type_problems(key: str, value: Any) -> list[str]:
    if value is None and key in _NULLABLE:
        return []
    expected = _FIELD_TYPES[key]
    wrong_bool = isinstance(value, bool) and bool not in expected
    if wrong_bool or not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in expected)
        nullable = " or null" if key in _NULLABLE else ""
        return [f"{key} must be {names}{nullable}, got {value!r}"]
    return []


class FaultBook:
    """The active faults, in the order added, shared safely between request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Each entry is [fault, uses left]; None means the fault never runs out (times=0).
        self._entries: list[tuple[Fault, list[int | None]]] = []

    def add(self, fault: Fault) -> None:
        """Append a fault; earlier faults win when several match."""
        with self._lock:
            self._entries.append((fault, [fault.times or None]))

    def clear(self) -> int:
        """Remove every fault and say how many there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count

    def take(self, api: str, body: bytes) -> Fault | None:
        """Find the first matching fault and use it up once, in one atomic step."""
        with self._lock:
            for index, (fault, left) in enumerate(self._entries):
                if not fault.applies_to(api, body):
                    continue
                if left[0] is not None:
                    left[0] -= 1
                    if left[0] == 0:
                        del self._entries[index]
                return fault
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        """List the active faults with how many uses each has left (null = forever)."""
        with self._lock:
            return [{**fault.to_json(), "left": left[0]} for fault, left in self._entries]


class RequestLog:
    """The requests the sandbox received, in order, shared safely between request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        """Keep one request's record."""
        with self._lock:
            self._entries.append(entry)

    def copies(self) -> list[dict[str, Any]]:
        """Give deep copies, so that callers cannot change what was recorded."""
        with self._lock:
            return copy.deepcopy(self._entries)

    def clear(self) -> int:
        """Forget every record and say how many there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count
