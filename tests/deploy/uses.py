"""What deploy/ asks of the code: commands, options and environment variables, checked against it.

A manifest that runs `relay helth` or sets `RELAY_CONCURENCY` is valid YAML and a valid
Kubernetes object, and does nothing. These helpers find each command line and variable a file
uses and say which of them the code does not know.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import click
from uvicorn.config import HTTP_PROTOCOLS, LOOP_FACTORIES
from uvicorn.importer import ImportFromStringError, import_from_string
from uvicorn.main import main as uvicorn_cli

from worker.ops.cli.main import main as relay_cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Programs the image or the Redis image ship, which are not ours to check.
OTHER_PROGRAMS = {"redis-server", "redis-cli", "python", "sh", "sleep"}
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def interpolate(text: str) -> str:
    """A compose value with each ${VAR:-default} as its default (or "x" when it has none)."""
    return _INTERPOLATION.sub(_default, text)


def _default(match: re.Match[str]) -> str:
    """A ${...}'s default: "" for an explicit empty one (`${VAR:-}`), else "x" when none."""
    if match.group(2) == "" and ":-" in match.group(0):
        return ""
    return match.group(2) or "x"


def argv_of(command: str | list[str]) -> list[str]:
    """The argument vector a command runs: a `sh -c '...'` line is read for what it execs."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if argv[:1] in (["CMD"], ["CMD-SHELL"]):  # compose healthchecks
        argv = shlex.split(argv[1]) if argv[0] == "CMD-SHELL" else argv[1:]
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2])
    return argv[1:] if argv[:1] == ["exec"] else argv


def problems_with(argv: list[str]) -> list[str]:
    """Why the code would not run `argv` as written (empty when it would)."""
    program = argv[0].rsplit("/", 1)[-1]
    if program == "relay":
        return _relay_problems(argv[1:])
    if program == "celery":
        return _celery_problems(argv[1:])
    if program == "uvicorn":
        return _uvicorn_problems(argv[1:])
    if program == "tini":
        return [] if argv[1:2] == ["--"] else [f"tini without --: {argv}"]
    return [] if program in OTHER_PROGRAMS else [f"unknown program {argv[0]!r}"]


def _relay_problems(args: list[str]) -> list[str]:
    command = relay_cli.commands.get(args[0]) if args else None
    if command is None:
        return [f"relay has no command {args[:1]}"]
    known = {
        opt for param in command.params for opt in param.opts if isinstance(param, click.Option)
    }
    return [f"relay {args[0]} has no option {a}" for a in _options(args[1:]) if a not in known]


def _celery_problems(args: list[str]) -> list[str]:
    if args[:2] != ["-A", "worker"] or len(args) < 3 or args[2] not in ("worker", "flower"):
        return [f"not `celery -A worker worker|flower`: {args}"]
    usage = _flower_options() if args[2] == "flower" else _celery_help(args[2])
    return [f"celery {args[2]} has no option {a}" for a in _options(args[3:]) if a not in usage]


def uvicorn_params(args: list[str]) -> dict[str, Any]:
    """What uvicorn makes of `args`, parsed by its own command line (click): an unknown option,
    a value it refuses (`--loop=uvlop`, `--port=http`) or a missing APP raise click's errors."""
    with uvicorn_cli.make_context("uvicorn", list(args)) as context:
        return dict(context.params)


def _uvicorn_problems(args: list[str]) -> list[str]:
    """uvicorn must serve the ingress the way the code builds it: `--factory MODULE:FUNCTION`,
    a function that imports and can be called (worker.ingress.app:create_app), on an event
    loop and an HTTP parser that are installed."""
    try:
        params = uvicorn_params(args)
    except click.ClickException as exc:
        return [f"uvicorn would refuse {args}: {exc.format_message()}"]
    if not params["factory"]:
        return [f"uvicorn {params['app']} without --factory: the app is built by a factory"]
    problems = []
    # --loop and --http take a name from uvicorn's tables or an import string, resolved only
    # when the server starts: resolve them here as uvicorn would (uvloop, httptools installed?).
    for option, table in (("loop", LOOP_FACTORIES), ("http", HTTP_PROTOCOLS)):
        target = table.get(params[option], params[option])
        if target is not None and not _imports(target):
            problems.append(f"uvicorn --{option}={params[option]} does not load ({target})")
    if not callable(_imports(params["app"])):
        problems.append(f"uvicorn --factory {params['app']} does not import as a callable")
    return problems


def _imports(target: str) -> Any:
    """The object `module:attribute` names, or None when it does not import."""
    try:
        return import_from_string(target)
    except ImportFromStringError:
        return None


def _flower_options() -> set[str]:
    """Flower's options (tornado options: `celery flower --help` does not list them)."""
    from flower.options import options

    return {f"--{name}" for name in options._options}


def is_flower_variable(name: str) -> bool:
    """True for FLOWER_X that Flower reads as its option --x (flower.command.apply_env_options)."""
    option = "--" + name.removeprefix("FLOWER_").lower().replace("_", "-")
    return name.startswith("FLOWER_") and option in _flower_options()


def _options(args: Iterable[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


@cache
def _celery_help(subcommand: str) -> str:
    """`celery -A worker SUBCOMMAND --help`, from this checkout's installed Celery (and Flower)."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", subcommand, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def settings_variables() -> set[str]:
    """Every variable the settings read (worker/settings/, the one place they are declared)."""
    from worker.settings import SPECS

    return {spec.env for spec in SPECS}


def environ_variables() -> set[str]:
    """Names the code reads from os.environ itself, outside the settings (for example
    PROMETHEUS_MULTIPROC_DIR, which the ingress's /metrics reads)."""
    found: set[str] = set()
    for path in (ROOT / "worker").rglob("*.py"):
        found |= set(re.findall(r'environ(?:\.get\(|\[)"([A-Z_]+)"', path.read_text()))
    return found


def unknown_variables(names: Iterable[str], allowed: set[str]) -> set[str]:
    """RELAY_* names the settings do not read, and other names neither the code reads nor in
    `allowed`."""
    known = settings_variables() | environ_variables() | {"REDIS_URL", "SENTRY_DSN"}
    return {
        n
        for n in names
        if n not in known
        and not is_flower_variable(n)
        and (n.startswith("RELAY_") or n not in allowed)
    }


def env_example(path: str = ".env") -> dict[str, str]:
    """The variables of deploy/`path`.example: .env is what compose reads for its ${...};
    env/<service>.env what one service's containers are given."""
    lines = (DEPLOY / f"{path}.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def secret_names_in_targets(path: Path) -> set[str]:
    """The ${ENV} names a targets file reads its secrets from."""
    return set(re.findall(r"\$\{(\w+)\}", path.read_text()))
