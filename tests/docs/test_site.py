"""The documentation: the site builds strictly (no broken link, no page left out of the nav),
the README stays a front door, and nothing cites what a reader does not have."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from worker.settings import SPECS

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 250
# What only the team that wrote it has: its issue tracker and its private product notes.
UNFOLLOWABLE = re.compile(r"issue \d|issue \"|PRODUCT\.md|style guide|STYLE\.md|\.\./shared", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return out


@pytest.mark.timeout(150)
def test_the_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "getting-started" / "index.html").is_file()


@pytest.mark.timeout(150)
def test_the_configuration_reference_lists_every_setting_from_its_definition(site: Path) -> None:
    page = (site / "reference" / "configuration" / "index.html").read_text()
    missing = [spec.env for spec in SPECS if spec.env not in page]
    assert not missing


def test_the_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for command in ("make run", "make test"):
        assert command in text
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), link


def test_nothing_cites_what_a_reader_does_not_have() -> None:
    paths = [ROOT / "README.md", ROOT / "mkdocs.yml", *(ROOT / "docs").rglob("*.md")]
    paths += [p for p in (ROOT / "deploy").rglob("*") if p.is_file()]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if UNFOLLOWABLE.search(line)
    ]
    assert not found
