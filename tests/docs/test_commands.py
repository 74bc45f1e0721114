"""Commands the README, the site and deploy/ give to copy: the ones that misled a first reader
(a compose command reading a file on stdin without `-T`, a Flower open to the network)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "deploy").rglob("*.md")]
PAGES += [*(ROOT / "deploy").rglob("*.yaml")]


def _commands() -> list[tuple[str, str]]:
    """Every logical line (backslash continuations joined) of the pages, with where it is."""
    found = []
    for path in PAGES:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        for number, line in enumerate(text.splitlines(), 1):
            found.append((f"{path.relative_to(ROOT)}:{number}", line))
    return found


COMMANDS = _commands()


def test_the_pages_have_commands_to_check() -> None:
    assert any("docker compose" in line for _, line in COMMANDS)
    assert any(re.search(r"celery .*flower", line) for _, line in COMMANDS)


@pytest.mark.parametrize(
    ("where", "line"),
    [(w, line) for w, line in COMMANDS if re.search(r"docker compose (exec|run)\b.* < ", line)],
)
def test_a_compose_command_reading_a_file_on_stdin_has_no_tty(where: str, line: str) -> None:
    # without -T, compose gives the command a terminal and the file never reaches it
    assert " -T " in line, where


@pytest.mark.parametrize(
    ("where", "line"),
    [(w, line) for w, line in COMMANDS if re.search(r"celery\W.*\bflower\b", line) and ".md:" in w],
)
def test_flower_is_never_offered_open_to_the_network(where: str, line: str) -> None:
    # its API revokes tasks and sends control commands to every worker (the compose file's and
    # the manifests' Flower have tests of their own in tests/deploy)
    assert "0.0.0.0" not in line, where
    assert re.search(r"--basic-auth|FLOWER_BASIC_AUTH|--auth|address=127\.0\.0\.1", line), where
