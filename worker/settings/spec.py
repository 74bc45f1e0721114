"""How one setting is declared and read from the environment: `setting(...)` makes a field
of `worker.settings.Settings` that carries its `Spec` (variable, kind, default, bounds, doc)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")
Kind = Literal["text", "int", "float", "bool", "choice", "redis_url"]
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Spec:
    """How one environment variable is read: its kind, default, bounds and documentation."""

    env: str
    kind: Kind
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    """Never shown: not in a repr, a log line, an error message or an error report."""
    unit: str = ""

    def accepted(self) -> str:
        """The accepted values, in words (for errors and the reference)."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "1/true/yes/on or 0/false/no/off"
        if self.kind == "redis_url":
            return "a URL starting with " + ", ".join(REDIS_SCHEMES)
        if self.kind in ("int", "float"):
            kind = "a whole number" if self.kind == "int" else "a number"
            low = _show(self.minimum) if self.minimum is not None else None
            high = _show(self.maximum) if self.maximum is not None else None
            if low is not None and high is not None:
                return f"{kind} from {low} to {high}{self.unit}"
            if low is not None:
                return f"{kind} of at least {low}{self.unit}"
            return kind
        return "text"


def _show(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def setting(
    env: str,
    default: Any,
    kind: Kind,
    doc: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
    secret: bool = False,
    unit: str = "",
) -> Any:
    """A field of `Settings` read from variable `env` (see `Spec`)."""
    spec = Spec(env, kind, default, doc, minimum, maximum, choices, secret, unit)
    return field(default=default, repr=not secret, metadata={"spec": spec})


class SettingsError(SystemExit):
    """The environment holds values the relay cannot run with; the message lists each one
    and what is accepted (a SystemExit, so a command prints it and exits non-zero)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} setting(s) cannot be used:\n{lines}")


def read_value(spec: Spec, raw: str) -> Any:
    """The value of one variable's text; ValueError when it is not one `spec` accepts."""
    text = raw.strip()
    if spec.kind == "text":
        return raw
    if spec.kind == "redis_url":
        if not text.startswith(REDIS_SCHEMES):
            raise ValueError("unknown scheme")
        return text
    if spec.kind == "bool":
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError("not a yes or no")
        return text.lower() in _TRUE
    if spec.kind == "choice":
        found = next((c for c in spec.choices if c.lower() == text.lower()), None)
        if found is None:
            raise ValueError("not one of the choices")
        return found
    return _number(spec, text)


def _number(spec: Spec, text: str) -> float | int:
    number = float(text)  # ValueError for what is not a number
    if not math.isfinite(number) or (spec.kind == "int" and not number.is_integer()):
        raise ValueError("not a finite number of its kind")
    low = -math.inf if spec.minimum is None else spec.minimum
    high = math.inf if spec.maximum is None else spec.maximum
    if not low <= number <= high:
        raise ValueError("out of range")
    return int(number) if spec.kind == "int" else number


def problem(spec: Spec, raw: str) -> str:
    """What to tell an operator about a value `spec` refused: never a secret."""
    if spec.kind == "redis_url":
        given = repr(safe_url(raw))
    elif spec.secret:
        given = "(a secret, not shown)"
    else:
        given = repr(raw)
    default = "unset" if spec.default is None else f"{spec.default}"
    return f"{spec.env}={given}: must be {spec.accepted()} (default: {default})"


_MASK = "***"
_SECRET_PARAMS = ("password", "passwd", "secret", "token")


def safe_url(url: str) -> str:
    """A Redis URL without its passwords, fit for output and logs: the userinfo's password and
    every query parameter that names one (`?password=`, `&sentinel_password=`), in each address
    of a sentinel:// list."""
    return ";".join(_safe_part(part) for part in url.split(";"))


def _safe_part(url: str) -> str:
    head, question, query = url.partition("?")
    scheme, sep, rest = head.rpartition("://") if "://" in head else ("", "", head)
    # The userinfo ends at the last '@' of the address (a password may hold a raw '@').
    userinfo, at, address = rest.rpartition("@")
    if at:
        user = userinfo.partition(":")[0] if ":" in userinfo else ""
        rest = f"{user}:{_MASK}@{address}" if user else f"{_MASK}@{address}"
    params = "&".join(_safe_param(p) for p in query.split("&")) if question else ""
    return f"{scheme}{sep}{rest}{question}{params}"


def _safe_param(param: str) -> str:
    name, equals, _ = param.partition("=")
    if equals and any(word in name.lower() for word in _SECRET_PARAMS):
        return f"{name}={_MASK}"
    return param


def url_secrets(url: str) -> set[str]:
    """The passwords a Redis URL (or sentinel:// list) carries, as written and decoded: what a
    scrubber must remove from anything that leaves the process."""
    found: set[str] = set()
    for part in url.split(";"):
        head, _, query = part.partition("?")
        userinfo, at, _ = head.partition("://")[2].rpartition("@")
        if at and ":" in userinfo:
            found.add(userinfo.partition(":")[2])
        for param in query.split("&"):
            name, equals, value = param.partition("=")
            if equals and any(word in name.lower() for word in _SECRET_PARAMS):
                found.add(value)
    return {s for secret in found if secret for s in (secret, unquote(secret))}
