"""Structure rules `make lint` keeps: no import cycle, small functions, small modules, and
imports that point the way the architecture says (see the README's "The house").

Reads the source with `ast` (nothing is imported or run), so it works on a broken checkout too.
Exit status 0 when every rule holds, 1 with one line per breach.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tasks", "worker")
MAX_FUNCTION_LINES = 40
MAX_MODULE_LINES = 300
# Folders whose modules are held to the function and module limits (tests and the bench too:
# a 600-line test module hides which behaviour it covers as well as a product module would).
SIZED = ("tasks", "worker", "tests", "bench", "tools")

# Which rooms a room may import from (module level or inside a function). A room is a package,
# a subpackage or a module; the most specific one that names a module wins. Arrows point one
# way: the pure domain uses nothing of the runtime, the stores use only Redis (and the domain's
# types), delivery and intake use the stores, and the app, operations and dev tools use it all.
BASE = {"tasks", "worker.settings", "worker.config", "worker.sources"}
ROOMS: dict[str, set[str]] = {
    "tasks": set(),
    "tasks.deliver": {"worker.delivery.runtime"},  # the thin tasks call the pipeline, lazily
    "worker.settings": set(),
    "worker.config": {"tasks", "worker.sources"},
    "worker.sources": {"tasks"},
    "worker.stores": BASE,
    "worker.observe": BASE,
    # The cells route what comes in (onto each cell's inbox) and read each cell's stores.
    "worker.cells": BASE | {"worker.stores", "worker.observe", "worker.intake.inbox"},
    "worker.intake": BASE | {"worker.stores", "worker.observe", "worker.cells"},
    "worker.delivery": BASE | {"worker.stores", "worker.observe"},
    "worker.ingress": BASE | {"worker.stores", "worker.observe", "worker.intake", "worker.cells"},
    "worker.ops": {"tasks", "worker"},
    "worker.dev": {"tasks", "worker"},
    "worker.celery": {"tasks", "worker"},
    "worker.bootsteps": {"tasks", "worker"},
    "worker.broker": set(),
}


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imports(name: str, path: Path, tree: ast.Module) -> Iterator[str]:
    """Every module (or module.name) imported anywhere in `tree`."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from pkg import mod` depends on the module; a name from a module, on it
                yield f"{base}.{alias.name}"


def resolve(target: str, known: set[str]) -> str | None:
    """The module `target` names: itself, or the module a name was imported from."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def room_of(module: str) -> str | None:
    best = None
    for room in ROOMS:
        if (module == room or module.startswith(room + ".")) and (
            best is None or len(room) > len(best)
        ):
            best = room
    return best


def allowed(source: str, target: str) -> bool:
    room = room_of(source)
    if room is None or target == source:
        return True
    if target.startswith(room + ".") or target == room:
        return True
    return any(target == r or target.startswith(r + ".") for r in ROOMS[room])


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def size_problems() -> Iterator[str]:
    for folder in SIZED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text()
            where = path.relative_to(ROOT)
            lines = source.count("\n")
            if lines > MAX_MODULE_LINES:
                yield f"{where}: {lines} lines (at most {MAX_MODULE_LINES} a module)"
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        yield (
                            f"{where}:{node.lineno}: {node.name} is {length} lines "
                            f"(at most {MAX_FUNCTION_LINES} a function)"
                        )


def import_problems() -> Iterator[str]:
    found = dict(modules())
    known = set(found)
    # Every import counts, function-level ones too: a lazy import hides a cycle, it does not
    # remove it (the two modules still need each other).
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        tree = ast.parse(path.read_text())
        for target in imports(name, path, tree):
            resolved = resolve(target, known)
            if resolved is None or resolved == name:
                continue
            graph.setdefault(name, set()).add(resolved)
            if not allowed(name, resolved):
                yield f"{path.relative_to(ROOT)}: imports {resolved} ({room_of(name)} may not)"
    for cycle in find_cycles(graph):
        yield "import cycle: " + " -> ".join(cycle)


def main() -> int:
    problems = sorted(set(import_problems())) + list(size_problems())
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
