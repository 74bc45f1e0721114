"""The command line's page lists every command and every option the `relay` command has, so
that neither can be added without being documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from worker.ops.cli.main import main

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operating" / "cli.md"


def _commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = list(_commands(main, "relay"))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_the_page_documents_the_command_and_each_option(path: str, command: click.Command) -> None:
    page = PAGE.read_text()
    assert f"`{path}" in page
    for param in command.params:
        for option in param.opts:
            if option.startswith("--") and option != "--help":
                assert option in page, f"{path} {option}"
