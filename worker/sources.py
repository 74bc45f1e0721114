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
from tasks.upstream.signatures import SECRETS

DEFAULT_CORRELATION_TTL = 7 * 86400.0
DEFAULT_CORRELATION_WAIT = 300.0
SECRET_KEYS = frozenset(name for names in SECRETS.values() for name in names)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_COMMON = {"kind", "target", "correlation_ttl", "correlation_wait"}


@dataclass(frozen=True, slots=True)
class Source:
    """One upstream account: its kind, secrets, default target and correlation durations."""

    name: str
    kind: str
    secrets: Mapping[str, str] = field(repr=False)
    target: str | None = None
    correlation_ttl: float = DEFAULT_CORRELATION_TTL
    correlation_wait: float = DEFAULT_CORRELATION_WAIT


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
    allowed = _COMMON | set(SECRETS[kind]) | ({"public_url"} if kind == "twilio" else set())
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
    )


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
