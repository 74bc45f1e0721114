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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from tasks.backoff import RetryPolicy
from tasks.targets import TARGET_KINDS
from worker.sources import SECRET_KEYS, Source, parse_sources

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_COMMON_KEYS = {"kind", "base_url", "auth", "timeout", "retry", "rate_limit"}
_AUTH_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys) besides "type"
    "bearer": ({"token"}, set()),
    "client_credentials": ({"token_url", "client_id", "client_secret"}, {"scope"}),
    "hub_signature": ({"secret"}, set()),
    "jwt_bearer": ({"consumer_key", "username", "private_key"}, {"login_url"}),
}
_SECRET_KEYS = {"token", "client_secret", "secret", "private_key", *SECRET_KEYS}
DEFAULT_TIMEOUT = 10.0


class Secret(str):
    """A string that never prints itself."""

    def __repr__(self) -> str:
        return "Secret('***')"


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
    """The configuration is unusable; `problems` lists every reason, one line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} configuration problem(s):\n{lines}")


def load_config(path: str, environ: Mapping[str, str] | None = None) -> RelayConfig:
    """Read and check the targets file at `path`; raise `ConfigError` listing every problem."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (set RELAY_CONFIG to the targets file)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return parse_config(document, path, os.environ if environ is None else environ)


def parse_config(
    document: Mapping[str, Any], source: str, environ: Mapping[str, str]
) -> RelayConfig:
    """Check a decoded targets document; raise `ConfigError` listing every problem."""
    problems: list[str] = []
    secrets: set[str] = set()
    document = _substitute(document, "", environ, problems, secrets)
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


def _substitute(
    value: Any, where: str, environ: Mapping[str, str], problems: list[str], secrets: set[str]
) -> Any:
    """Replace ${VAR} in every string; missing variables are problems, values become Secrets."""
    if isinstance(value, dict):
        return {
            k: _substitute(v, f"{where}.{k}" if where else k, environ, problems, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, where, environ, problems, secrets) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    missing = [m for m in _ENV_REF.findall(value) if m not in environ]
    for name in missing:
        problems.append(f"{where}: environment variable {name} is not set")
    result = Secret(_ENV_REF.sub(lambda m: environ.get(m.group(1), ""), value))
    if result and where.rsplit(".", 1)[-1] in _SECRET_KEYS:
        secrets.add(result)
    return result


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
    base_url = _base_url(table.get("base_url"), where, problems)
    options, kind_problems = kind.parse_options(dict(table, base_url=base_url), where)
    problems += kind_problems
    option_keys = {f.name for f in fields(options)} - {"base_url"}
    for key in sorted(set(table) - _COMMON_KEYS - option_keys):
        problems.append(f"{where}.{key}: unknown key for a {kind.name} target")
    auth = _auth(table.get("auth"), f"{where}.auth", kind.auth_types, problems)
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


def _base_url(value: Any, where: str, problems: list[str]) -> str:
    if not isinstance(value, str) or not value:
        problems.append(f"{where}.base_url: required, e.g. https://host.example.com")
        return ""
    problems += http_url_problems(value, f"{where}.base_url")
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        problems.append(f"{where}.base_url: must not carry a query or fragment")
    return value.rstrip("/")


def http_url_problems(value: str, where: str) -> list[str]:
    """What is wrong with an http(s) URL the relay will call: no scheme or host, credentials
    in it (they belong in `auth`, as ${ENV} secrets), or spaces and control characters."""
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:  # e.g. a port that is not a number
        return [f"{where}: not a URL"]
    if parts.scheme not in ("http", "https") or not host:
        return [f"{where}: must be an http(s) URL with a host, got {value!r}"]
    if parts.username is not None or parts.password is not None:
        return [f"{where}: must not carry credentials (user:password@); put them in auth"]
    if any(c.isspace() or not c.isprintable() for c in value):
        return [f"{where}: must not contain spaces or control characters"]
    return []


def _auth(value: Any, where: str, allowed: frozenset[str], problems: list[str]) -> AuthConfig:
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
        found = _auth_value_problems(raw, key, f"{where}.{key}")
        problems += found
        if not found:
            params[key] = raw
    return AuthConfig(kind, params)


def _auth_value_problems(raw: Any, key: str, where: str) -> list[str]:
    """What is wrong with one value of an auth table (never quoting a secret)."""
    if not isinstance(raw, str) or not raw:
        return [f"{where}: must be a non-empty string"]
    if key in _SECRET_KEYS and not isinstance(raw, Secret):
        return [f'{where}: write secrets as "${{ENV_VAR}}", not in the file']
    if key.endswith("_url"):
        return http_url_problems(raw, where)
    if key != "private_key" and not raw.isprintable():
        # A newline in a header value would end the header early (or be refused later).
        return [f"{where}: must not contain line breaks or control characters"]
    return []


def _positive(value: Any, where: str, problems: list[str]) -> float | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
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
