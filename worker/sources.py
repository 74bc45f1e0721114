"""`[sources.NAME]` tables of the configuration file: the upstream accounts whose callbacks the
ingress takes (see the README, "Upstream receipts").

Checked with the rest of the file at start-up, every problem listed; secrets only as ${ENV}.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tasks.upstream import KINDS
from tasks.upstream.receipts import DEFAULT_MAX_RECEIPTS
from tasks.upstream.signatures import SECRETS

DEFAULT_CORRELATION_TTL = 7 * 86400.0
DEFAULT_CORRELATION_WAIT = 300.0
DEFAULT_RECEIPTS_PER_SECOND = 1000.0
"""Receipts a second one source may send, fleet-wide (10 seconds' worth may come at once)."""
DEFAULT_MAX_WAITING = 10_000
"""Receipts of one source that may wait for their correlation record at once."""
DEFAULT_MAX_DEAD_LETTERS = 10_000
"""Dead letters one source's callbacks may make (unreadable, forbidden, uncorrelated), kept
apart from every other dead letter: past it the source's own oldest go."""
SECRET_KEYS = frozenset(name for names in SECRETS.values() for name in names) | {"reference_key"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_COMMON = {"kind", "target", "correlation_ttl", "correlation_wait"}
# Who may write what, and how much: (key, default, most) for the whole-number bounds.
_TRUST = {"targets", "reference_key", "receipts_per_second"}
_COUNTS = {
    "max_receipts": (DEFAULT_MAX_RECEIPTS, 100_000),
    "max_waiting": (DEFAULT_MAX_WAITING, 10_000_000),
    "max_dead_letters": (DEFAULT_MAX_DEAD_LETTERS, 1_000_000),
}


@dataclass(frozen=True, slots=True)
class Source:
    """One upstream account: its kind, secrets, default target and correlation durations; the
    targets its references may name and the bounds of what it may send."""

    name: str
    kind: str
    secrets: Mapping[str, str] = field(repr=False)
    target: str | None = None
    correlation_ttl: float = DEFAULT_CORRELATION_TTL
    correlation_wait: float = DEFAULT_CORRELATION_WAIT
    targets: frozenset[str] = frozenset()
    """Its own targets (`target` and `targets`): the only ones an echoed reference may name."""
    reference_key: str | None = field(default=None, repr=False)
    """With it, an echoed reference counts only when signed with it (HMAC-SHA256)."""
    max_receipts: int = DEFAULT_MAX_RECEIPTS
    receipts_per_second: float = DEFAULT_RECEIPTS_PER_SECOND
    max_waiting: int = DEFAULT_MAX_WAITING
    max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS

    def __post_init__(self) -> None:
        if self.target and self.target not in self.targets:  # the default is always its own
            object.__setattr__(self, "targets", self.targets | {self.target})

    @property
    def burst(self) -> float:
        """Receipts that may come at once: 10 seconds' worth, and at least one whole callback."""
        return max(self.receipts_per_second * 10, float(self.max_receipts))


def parse_sources(
    tables: Any, targets: Set[str], problems: list[str], is_secret: Any
) -> dict[str, Source]:
    """Every `[sources.NAME]` table checked; problems appended, one line each."""
    if tables is None:
        return {}
    if not isinstance(tables, dict):
        problems.append("sources: must be a table of [sources.NAME] tables")
        return {}
    found = {}
    for name, table in tables.items():
        source = _source(name, table, targets, problems, is_secret)
        if source is not None:
            found[name] = source
    return found


def _source(
    name: str, table: Any, targets: Set[str], problems: list[str], is_secret: Any
) -> Source | None:
    where = f"sources.{name}"
    if not _NAME.match(name):
        problems.append(f"{where}: a source name uses letters, digits, '_', '-', '.' only")
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a table")
        return None
    kind = table.get("kind")
    if kind not in KINDS:
        problems.append(f"{where}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        return None
    allowed = _COMMON | _TRUST | set(_COUNTS) | set(SECRETS[kind])
    allowed |= {"public_url"} if kind == "twilio" else set()
    problems += [
        f"{where}.{key}: unknown key for a {kind} source" for key in sorted(set(table) - allowed)
    ]
    secrets = _secrets(table, where, SECRETS[kind], problems, is_secret)
    if kind == "twilio" and "public_url" in table:
        secrets["public_url"] = _public_url(table["public_url"], where, problems)
    target = table.get("target")
    if target is not None and (not isinstance(target, str) or target not in targets):
        problems.append(f"{where}.target: {target!r} is not a configured target")
        target = None
    return Source(
        name,
        kind,
        secrets,
        target,
        _duration(table, "correlation_ttl", DEFAULT_CORRELATION_TTL, where, problems),
        _duration(table, "correlation_wait", DEFAULT_CORRELATION_WAIT, where, problems),
        _targets(table, target, targets, where, problems),
        _reference_key(table, where, problems, is_secret),
        max_receipts=_count(table, "max_receipts", where, problems),
        receipts_per_second=_rate(table, where, problems),
        max_waiting=_count(table, "max_waiting", where, problems),
        max_dead_letters=_count(table, "max_dead_letters", where, problems),
    )


def _targets(
    table: dict[str, Any], target: str | None, known: Set[str], where: str, problems: list[str]
) -> frozenset[str]:
    """The source's own targets: its default `target` and the list `targets`."""
    own = {target} if target else set()
    listed = table.get("targets")
    if listed is None:
        return frozenset(own)
    if not isinstance(listed, list) or not listed or not all(isinstance(t, str) for t in listed):
        problems.append(f"{where}.targets: must be a list of configured target names")
        return frozenset(own)
    problems += [
        f"{where}.targets: {t!r} is not a configured target" for t in listed if t not in known
    ]
    return frozenset(own | {t for t in listed if t in known})


def _reference_key(
    table: dict[str, Any], where: str, problems: list[str], is_secret: Any
) -> str | None:
    if "reference_key" not in table:
        return None
    found = _secrets(table, where, ("reference_key",), problems, is_secret)
    return found.get("reference_key")


def _count(table: dict[str, Any], key: str, where: str, problems: list[str]) -> int:
    default, most = _COUNTS[key]
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        problems.append(f"{where}.{key}: must be a whole number from 1 to {most}, got {value!r}")
        return default
    return value


def _rate(table: dict[str, Any], where: str, problems: list[str]) -> float:
    value = table.get("receipts_per_second", DEFAULT_RECEIPTS_PER_SECOND)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.01 <= value <= 1_000_000
    ):
        problems.append(
            f"{where}.receipts_per_second: must be a number from 0.01 to 1000000, got {value!r}"
        )
        return DEFAULT_RECEIPTS_PER_SECOND
    return float(value)


def _secrets(
    table: dict[str, Any], where: str, names: tuple[str, ...], problems: list[str], is_secret: Any
) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in names:
        value = table.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f'{where}.{key}: required, e.g. {key} = "${{ENV_VAR}}"')
        elif not is_secret(value):
            problems.append(f'{where}.{key}: write secrets as "${{ENV_VAR}}", not in the file')
        else:
            found[key] = value
    return found


def _public_url(value: Any, where: str, problems: list[str]) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{where}.public_url: must be the http(s) URL Twilio calls, got {value!r}")
        return ""
    if parts.query or parts.fragment:
        problems.append(f"{where}.public_url: without a query (the request's own is added)")
    return str(value)


def _duration(
    table: dict[str, Any], key: str, default: float, where: str, problems: list[str]
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{where}.{key}: must be a number of seconds, got {value!r}")
        return default
    if value <= 0:
        problems.append(f"{where}.{key}: must be positive, got {value!r}")
        return default
    return float(value)
