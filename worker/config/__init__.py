"""The targets file (RELAY_CONFIG, TOML): loaded and checked once, at start-up.

Every problem is collected, so an operator fixes a broken file in one go instead of one error
per restart. Secrets are written `${ENV_VAR}` in the file and kept in `Secret` so that they never
show in a repr, a log line or an error report.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from tasks.backoff import RetryPolicy
from tasks.targets import TARGET_KINDS
from worker.config.env import Secret, substitute
from worker.config.urls import http_url_problems
from worker.sources import SECRET_KEYS, Source, parse_sources

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_COMMON_KEYS = {"kind", "base_url", "auth", "timeout", "retry", "rate_limit", "allow_http"}
_AUTH_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys) besides "type"
    "bearer": ({"token"}, set()),
    "client_credentials": ({"token_url", "client_id", "client_secret"}, {"scope"}),
    "hub_signature": ({"secret"}, set()),
    "jwt_bearer": ({"consumer_key", "username", "private_key"}, {"login_url"}),
}
_SECRET_KEYS = {"token", "client_secret", "secret", "private_key", *SECRET_KEYS}
DEFAULT_TIMEOUT = 10.0
_UNSET = " is not set"  # the end of an unset ${VAR}'s problem line


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """How requests to a target are authenticated."""

    type: str
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Target:
    """One configured target: where, how, and with which retry policy."""

    name: str
    kind: str
    base_url: str
    options: Any
    auth: AuthConfig
    timeout: float
    retry: RetryPolicy
    rate_limit: float | None = None
    """Requests per second at most, across all workers (None: no limit)."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """The whole targets file, checked."""

    targets: Mapping[str, Target]
    retry: RetryPolicy
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    sources: Mapping[str, Source] = field(default_factory=dict)
    """Upstream accounts whose callbacks the ingress takes (`[sources.NAME]`)."""


class ConfigError(Exception):
    """The configuration is unusable; `problems` lists every reason, one line each (an unset
    ${VAR} once: what the checks then say of its empty value is not news, and wrong)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        unset = {p.split(":")[0] for p in problems if p.endswith(_UNSET)}
        self.problems = problems = [
            p for p in problems if p.endswith(_UNSET) or p.split(":")[0] not in unset
        ]
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} configuration problem(s):\n{lines}")


SECTIONS = ("targets", "sources")


def load_config(
    path: str,
    environ: Mapping[str, str] | None = None,
    *,
    secrets_for: Collection[str] = SECTIONS,
) -> RelayConfig:
    """Read and check the targets file at `path`; raise `ConfigError` listing every problem.
    `secrets_for`: the sections whose ${VAR} secrets this process uses, and so needs set (a
    worker sends to targets, the ingress checks sources' signatures: neither is given the
    other's secrets, see `parse_config`)."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (set RELAY_CONFIG to the targets file)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return parse_config(document, path, os.environ if environ is None else environ, secrets_for)


def parse_config(
    document: Mapping[str, Any],
    source: str,
    environ: Mapping[str, str],
    secrets_for: Collection[str] = SECTIONS,
) -> RelayConfig:
    """Check a decoded targets document; raise `ConfigError` listing every problem.

    An unset ${VAR} in a section outside `secrets_for` is no problem: it reads as a stand-in
    ("(VAR not given to this process)") that is never sent nor taken for a secret."""
    problems: list[str] = []
    secrets: set[str] = set()
    document = substitute(document, environ, secrets_for, _SECRET_KEYS, problems, secrets)
    unknown = set(document) - {"targets", "retry", "sources"}
    problems += [
        f"{key}: unknown top-level key (expected [targets.NAME], [sources.NAME] and [retry])"
        for key in sorted(unknown)
    ]
    defaults = _retry_policy(document.get("retry", {}), "retry", RetryPolicy(), problems)
    tables = document.get("targets")
    targets: dict[str, Target] = {}
    if not isinstance(tables, dict) or not tables:
        problems.append("targets: no targets configured (add a [targets.NAME] table)")
    else:
        for name, table in tables.items():
            target = _target(name, table, defaults, problems)
            if target is not None:
                targets[name] = target
    names = set(tables) if isinstance(tables, dict) else set()
    sources = parse_sources(
        document.get("sources"), names, problems, lambda v: isinstance(v, Secret)
    )
    if problems:
        raise ConfigError(source, problems)
    return RelayConfig(targets, defaults, frozenset(secrets), sources)


def _target(name: str, table: Any, defaults: RetryPolicy, problems: list[str]) -> Target | None:
    where = f"targets.{name}"
    if not _NAME.match(name):
        problems.append(f"{where}: a target name uses letters, digits, '_', '-', '.' only")
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a table")
        return None
    kind_name = table.get("kind")
    kind = TARGET_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        problems.append(
            f"{where}.kind: must be one of {', '.join(sorted(TARGET_KINDS))}, got {kind_name!r}"
        )
        return None
    allow_http = table.get("allow_http", False)
    if not isinstance(allow_http, bool):
        problems.append(f"{where}.allow_http: must be true or false, got {allow_http!r}")
        allow_http = False
    base_url = _base_url(table.get("base_url"), where, problems, allow_http)
    options, kind_problems = kind.parse_options(dict(table, base_url=base_url), where)
    problems += kind_problems
    option_keys = {f.name for f in fields(options)} - {"base_url"}
    for key in sorted(set(table) - _COMMON_KEYS - option_keys):
        problems.append(f"{where}.{key}: unknown key for a {kind.name} target")
    auth = _auth(table.get("auth"), f"{where}.auth", kind.auth_types, problems, allow_http)
    timeout = _positive(table.get("timeout", DEFAULT_TIMEOUT), f"{where}.timeout", problems)
    # Without a table of its own the target takes the defaults, already checked once.
    retry = (
        _retry_policy(table["retry"], f"{where}.retry", defaults, problems)
        if "retry" in table
        else defaults
    )
    rate = table.get("rate_limit")
    rate_limit = _positive(rate, f"{where}.rate_limit", problems) if rate is not None else None
    return Target(
        name, kind.name, base_url, options, auth, timeout or DEFAULT_TIMEOUT, retry, rate_limit
    )


def _base_url(value: Any, where: str, problems: list[str], allow_http: bool) -> str:
    if not isinstance(value, str) or not value:
        problems.append(f"{where}.base_url: required, e.g. https://host.example.com")
        return ""
    problems += http_url_problems(value, f"{where}.base_url", allow_http)
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        problems.append(f"{where}.base_url: must not carry a query or fragment")
    return value.rstrip("/")


def _auth(
    value: Any, where: str, allowed: frozenset[str], problems: list[str], allow_http: bool
) -> AuthConfig:
    if not isinstance(value, dict):
        problems.append(f'{where}: required, e.g. {{ type = "bearer", token = "${{TOKEN}}" }}')
        return AuthConfig("none")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in allowed or kind not in _AUTH_KEYS:
        problems.append(f"{where}.type: must be one of {', '.join(sorted(allowed))}, got {kind!r}")
        return AuthConfig("none")
    required, optional = _AUTH_KEYS[kind]
    params: dict[str, str] = {}
    for key in sorted(required - set(value)):
        problems.append(f"{where}.{key}: required for auth type {kind!r}")
    for key, raw in value.items():
        if key == "type":
            continue
        if key not in required | optional:
            problems.append(f"{where}.{key}: unknown key for auth type {kind!r}")
            continue
        found = _auth_value_problems(raw, key, f"{where}.{key}", allow_http)
        problems += found
        if not found:
            params[key] = raw
    return AuthConfig(kind, params)


def _auth_value_problems(raw: Any, key: str, where: str, allow_http: bool) -> list[str]:
    """What is wrong with one value of an auth table (never quoting a secret)."""
    if not isinstance(raw, str) or not raw:
        return [f"{where}: must be a non-empty string"]
    if key in _SECRET_KEYS and not isinstance(raw, Secret):
        return [f'{where}: write secrets as "${{ENV_VAR}}", not in the file']
    if key.endswith("_url"):
        return http_url_problems(raw, where, allow_http)
    if key != "private_key" and not raw.isprintable():
        # A newline in a header value would end the header early (or be refused later).
        return [f"{where}: must not contain line breaks or control characters"]
    return []


def _positive(value: Any, where: str, problems: list[str]) -> float | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        problems.append(f"{where}: must be a positive number, got {value!r}")
        return None
    return float(value)


def _retry_policy(table: Any, where: str, base: RetryPolicy, problems: list[str]) -> RetryPolicy:
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a table")
        return base
    known = {f.name for f in fields(RetryPolicy)}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in known:
            problems.append(f"{where}.{key}: unknown key (expected {', '.join(sorted(known))})")
            continue
        number = _positive(raw, f"{where}.{key}", problems)
        if number is not None:
            if key == "max_attempts" and number != int(number):
                problems.append(f"{where}.max_attempts: must be a whole number")
            values[key] = int(number) if key == "max_attempts" else number
    policy = RetryPolicy(**{**{f.name: getattr(base, f.name) for f in fields(base)}, **values})
    if policy.base_delay > policy.max_delay:
        problems.append(
            f"{where}: base_delay ({policy.base_delay}) exceeds max_delay ({policy.max_delay})"
        )
    return policy
