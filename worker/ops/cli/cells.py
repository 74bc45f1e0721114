"""The operator's commands past one Redis: `relay cell-for`, and `status`, `dlq`, `trace` and
`retries` run in every cell in turn, each cell's output under a line naming it.

A command that finds nothing in a cell (`dlq show ID` where the letter is not) says nothing
there when another cell found it; a cell that cannot be reached is always said, and makes the
exit status 1, while the others are still shown. `--json` output is one document: arrays are
joined (each record with its `cell`), objects become `{"cells": [{"cell": N, ...}, ...]}`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

import click
import redis

from worker.cells.cells import Cells, get_cells
from worker.cells.router import cell_of
from worker.ops.cli.output import json_text
from worker.settings.spec import safe_url
from worker.stores.reach import describe

Finder = Callable[[str], bool]
"""Whether the cell being read holds the thing an id names."""


@dataclass
class CellRun:
    """What a command did in one cell."""

    cell: int
    code: int = 0
    out: str = ""
    err: str = ""
    trouble: str | None = None
    """Why the cell's Redis could not be used (always shown)."""

    @property
    def shown(self) -> bool:
        return self.code == 0 or bool(self.out.strip()) or self.trouble is not None


def run_in(
    cells: Cells, cell: int, callback: Callable[..., Any], kwargs: dict[str, Any]
) -> CellRun:
    """Run a command's callback inside `cell`, its output kept for later."""
    run, out, err = CellRun(cell), io.StringIO(), io.StringIO()
    with cells.inside(cell), redirect_stdout(out), redirect_stderr(err):
        try:
            callback(**kwargs)
        except click.UsageError:
            raise
        except redis.RedisError as exc:
            run.code, run.trouble = 1, describe(exc, cells.urls[cell]).message
        except click.ClickException as exc:
            run.code = exc.exit_code
            err.write(f"Error: {exc.format_message()}\n")
        except SystemExit as exc:
            run.code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    run.out, run.err = out.getvalue(), err.getvalue()
    return run


def _joined(cells: Cells, runs: list[CellRun]) -> Any:
    documents = [(r.cell, json.loads(r.out)) for r in runs if r.code == 0 and r.out.strip()]
    if documents and all(isinstance(d, list) for _, d in documents):
        return [
            {"cell": cell, **item} if isinstance(item, dict) else item
            for cell, doc in documents
            for item in doc
        ]
    return {"cells": [{"cell": cell, **doc} for cell, doc in documents if isinstance(doc, dict)]}


def report(cells: Cells, runs: list[CellRun], as_json: bool) -> int:
    """Print what every cell said; the exit status of them all."""
    found = any(r.code == 0 for r in runs)
    shown = [r for r in runs if r.shown or not found]
    if not found and shown and all(r.trouble is None for r in shown):
        shown = shown[:1]  # the same "not found" from every cell: said once
    if as_json and found:
        click.echo(json_text(_joined(cells, runs)))
    for run in shown:
        if not as_json or not found:
            if len(runs) > 1 and (run.out or run.trouble):
                click.echo(f"== {cells.name(run.cell)}")
            click.echo(run.out, nl=False)
        click.echo(run.err, nl=False, err=True)
        if run.trouble:
            click.echo(f"relay: {cells.name(run.cell)}: {run.trouble}", err=True)
    return max((r.code for r in shown), default=0)


def spread(command: click.Command, finder: tuple[str, Finder] | None = None) -> None:
    """Make `command` run in every cell when there are several. With `finder` (the name of
    its ids parameter, and how to tell whether the cell holds one), each cell gets the ids it
    holds; an id held by none is said, and the exit status is 1."""
    callback = command.callback
    assert callback is not None

    def in_every_cell(**kwargs: Any) -> None:
        cells = get_cells()
        if cells.count == 1:
            callback(**kwargs)
            return
        plan = _plan(cells, kwargs, finder)
        runs = [run_in(cells, cell, callback, args) for cell, args in plan]
        code = report(cells, runs, bool(kwargs.get("as_json")))
        if finder is not None and (ids := kwargs.get(finder[0])):
            held = {i for _, args in plan for i in args[finder[0]]}
            for missing in [i for i in ids if i not in held]:
                click.echo(f"relay: no cell holds {missing!r}", err=True)
                code = max(code, 1)
        raise SystemExit(code)

    command.callback = in_every_cell


def _plan(
    cells: Cells, kwargs: dict[str, Any], finder: tuple[str, Finder] | None
) -> list[tuple[int, dict[str, Any]]]:
    """Each cell with the arguments it runs with (only the ids it holds, with a finder)."""
    if finder is None or not kwargs.get(finder[0]):
        return [(cell, kwargs) for cell in range(cells.count)]
    name, holds = finder
    plan = []
    for cell in range(cells.count):
        with cells.inside(cell):
            mine = tuple(i for i in kwargs[name] if holds(i))
        if mine:
            plan.append((cell, {**kwargs, name: mine}))
    return plan


@click.command("cell-for")
@click.argument("first")
@click.argument("second")
@click.option("--cells", "count", type=int, help="The number of cells (default: RELAY_CELLS').")
def cell_for(first: str, second: str, count: int | None) -> None:
    """The cell of TARGET MESSAGE_ID (an event's target and first message id), or of SOURCE
    PROVIDER_MESSAGE_ID (where a correlation record and its receipts meet): its index in
    RELAY_CELLS and its address. Producers that RPUSH onto the inbox themselves push onto that
    cell's `<prefix>:inbox`."""
    if count is not None and count < 1:
        raise click.UsageError("--cells must be at least 1")
    cells = get_cells()
    cell = cell_of(first, second, count or cells.count)
    where = f" ({safe_url(cells.urls[cell])})" if count is None else ""
    click.echo(f"{cell}{where}")


def spread_over_cells(main: click.Group) -> None:
    """`status`, `trace`, and every `dlq` and `retries` command, run in every cell."""
    from worker.ops.cli.retries import parked
    from worker.stores.deadletters import DeadLetterStore

    def letter(letter_id: str) -> bool:
        return DeadLetterStore().get(letter_id) is not None

    def retry(parked_id: str) -> bool:
        return bool(parked((parked_id,)))

    finders: dict[str, tuple[str, Finder]] = {
        "dlq replay": ("letter_ids", letter),
        "dlq purge": ("letter_ids", letter),
        "retries now": ("ids", retry),
    }
    for name in ("status", "trace"):
        spread(main.commands[name])
    for group in ("dlq", "retries"):
        commands = main.commands[group]
        assert isinstance(commands, click.Group)
        for name, command in commands.commands.items():
            spread(command, finders.get(f"{group} {name}"))
