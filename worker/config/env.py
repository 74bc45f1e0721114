"""${VAR} in the targets file: read from the environment, kept as `Secret`s that never print
themselves, and only for the sections a process uses (a worker the targets', the ingress the
sources'); an unset variable elsewhere reads as a stand-in."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Secret(str):
    """A string that never prints itself."""

    def __repr__(self) -> str:
        return "Secret('***')"


def substitute(
    document: Mapping[str, Any],
    environ: Mapping[str, str],
    secrets_for: Collection[str],
    secret_keys: Collection[str],
    problems: list[str],
    secrets: set[str],
) -> dict[str, Any]:
    """`document` with every ${VAR} replaced; each unset one a section in `secrets_for` reads
    is a problem; the values of `secret_keys` are added to `secrets` (stand-ins are not)."""
    found: set[str] = set()
    result = {
        key: _substitute(
            part,
            key,
            environ if key in secrets_for else _StandIns(environ),
            (problems, found, secret_keys),
        )
        for key, part in document.items()
    }
    secrets.update(s for s in found if STAND_IN not in s)
    return result


STAND_IN = "not given to this process"


class _StandIns(dict[str, str]):
    """The environment, where a variable that is unset reads as a stand-in."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(environ)

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return f"({name} {STAND_IN})"

    def get(self, name: str, default: Any = None) -> Any:
        return self[name]


_Out = tuple[list[str], set[str], Collection[str]]


def _substitute(value: Any, where: str, environ: Mapping[str, str], out: _Out) -> Any:
    """Replace ${VAR} in every string; missing variables are problems, values become Secrets."""
    if isinstance(value, dict):
        return {
            k: _substitute(v, f"{where}.{k}" if where else k, environ, out)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, where, environ, out) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    problems, secrets, secret_keys = out
    missing = [m for m in _ENV_REF.findall(value) if m not in environ]
    for name in missing:
        problems.append(f"{where}: environment variable {name} is not set")
    result = Secret(_ENV_REF.sub(lambda m: environ.get(m.group(1), ""), value))
    if result and where.rsplit(".", 1)[-1] in secret_keys:
        secrets.add(result)
    return result
