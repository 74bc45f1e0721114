"""deploy/Dockerfile read, not built (no Docker daemon here): what it runs exists in the package,
and it keeps the promises deploy/README.md makes (stages, pinned base, numeric user, tini)."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from tests.deploy.uses import DEPLOY, ROOT, argv_of, problems_with

pytestmark = pytest.mark.timeout(60)
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """The arguments of every NAME instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


def test_the_entrypoint_is_tini_and_the_command_a_worker_the_package_installs() -> None:
    [entrypoint] = [json.loads(i) for i in instructions("ENTRYPOINT")]
    [command] = [json.loads(i) for i in instructions("CMD")]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert entrypoint == ["/usr/bin/tini", "--"]  # Debian's tini package puts it there
    assert problems_with(argv_of(entrypoint + command)[2:]) == []
    assert command[0] == "celery" and "relay" in scripts
    assert any(arg.startswith("--concurrency=") for arg in command)
    assert "RELAY_CONCURRENCY=16" in DOCKERFILE and "--concurrency=16" in command


def test_two_stages_from_a_pinned_base_running_as_a_numeric_user() -> None:
    [base] = [i.split("=", 1)[1] for i in instructions("ARG") if i.startswith("PYTHON_IMAGE=")]
    [user] = instructions("USER")

    assert len(instructions("FROM")) == 2
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    assert re.fullmatch(r"\d+:\d+", user) and not user.startswith("0")
    assert "apt-get install -y --no-install-recommends tini" in DOCKERFILE


def test_what_the_image_copies_exists_and_the_build_context_lets_it_in() -> None:
    sources = [i.split()[:-1] for i in instructions("COPY") if "--from=" not in i]
    let_in = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]

    for source in (s for group in sources for s in group):
        assert (ROOT / source).exists(), source
        assert source in let_in, f"{source} is left out of the build context by .dockerignore"
