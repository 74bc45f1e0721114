"""Earlier releases of the relay, installed from this repository's own history, for the tests
that run them beside this one (a rolling upgrade's overlap).

A release is named by its commit, never by its tag: a fresh clone may lack the tags, not the
history (a shallow clone lacks both, and is told so). Its code comes out of the git objects
(`git archive COMMIT | tar -x`) and is pip-installed into a venv of its own under
`.venv-releases/COMMIT` (ignored by git), reused by every later run: a cold install costs one
`pip install` (pip's cache and PyPI), a warm one nothing. Its processes run with that venv's
Python and the release's own source tree as working directory, so `celery -A worker` imports
the old code, never this checkout's.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from worker.dev.processes import worker_argv

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".venv-releases"
INSTALL_TIMEOUT = 600.0  # seconds: a cold pip install from PyPI on a slow CI runner


@dataclass(frozen=True)
class Release:
    version: str
    commit: str
    also: tuple[str, ...] = ()
    """Requirements installed with it that it should have declared itself."""


PREVIOUS = Release(
    "0.1.0",
    "a84274153d2c8def25ab8e2f20bc6c1d5a266834",
    # 0.1.0 asked for `celery`, not `celery[redis]`: installed alone, its worker cannot import
    # kombu's Redis transport (no `packaging`); it ran beside its test tools, which bring it.
    also=("celery[redis]==5.7.0",),
)
"""The release before this one: the code before the lanes (CHANGELOG.md)."""


@dataclass(frozen=True)
class Installed:
    """A release's source tree and venv, ready to run."""

    release: Release
    root: Path
    install_seconds: float
    """What installing it cost this run (0 when the cached venv was reused)."""

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` for a process of this release: its own Python first, its own code only."""
        env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PYTHONPATH"] = str(self.src)
        env["PATH"] = f"{self.python.parent}{os.pathsep}{base.get('PATH', '')}"
        return env

    def worker_argv(self, queue: str, name: str, *extra: str) -> list[str]:
        """The release's `celery -A worker worker`, as this release's tools start one (run it
        with cwd=`src`)."""
        return [str(self.python), *worker_argv(queue, name, *extra)[1:]]

    def cli_argv(self, *args: str) -> list[str]:
        """The release's `relay` command line (its module was worker.cli then)."""
        return [str(self.python), "-m", "worker.cli", *args]

    def start(self, argv: list[str], log_path: Path, env: Mapping[str, str]) -> Popen[bytes]:
        """A process of this release in its own process group (stop it with stop_group)."""
        with open(log_path, "wb") as log:  # the child keeps its own descriptor
            return Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(env),
                cwd=self.src,
                start_new_session=True,
            )

    def run(
        self, argv: list[str], env: Mapping[str, str], stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """Run a command of this release to its end."""
        return subprocess.run(
            argv,
            input=stdin,
            env=self.env(env),
            cwd=self.src,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def install(release: Release, cache: Path = CACHE) -> Installed:
    """The release installed under `cache` (reused when a complete install is there)."""
    root = cache / release.commit
    stamp = root / ".installed"
    cache.mkdir(parents=True, exist_ok=True)
    # One installer at a time (several test runs may share the cache); the stamp is written
    # last, so a half-made venv (an interrupted run) is made again, never used.
    with open(cache / f"{release.commit}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return Installed(release, root, 0.0)
        began = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        _extract(release, root / "src")
        _run([sys.executable, "-m", "venv", str(root / "venv")])
        pip = [str(root / "venv" / "bin" / "python"), "-m", "pip"]
        quiet = ["--quiet", "--disable-pip-version-check"]
        _run([*pip, "install", *quiet, str(root / "src"), *release.also])
        stamp.write_text(f"{release.version} {release.commit}\n")
        return Installed(release, root, time.monotonic() - began)


def _extract(release: Release, into: Path) -> None:
    """The release's files, exactly as committed, from this repository's git objects."""
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{release.commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if known.returncode != 0:
        raise RuntimeError(
            f"release {release.version} (commit {release.commit}) is not in this clone's "
            "history; a shallow clone lacks it: `git fetch --unshallow`"
        )
    into.mkdir(parents=True)
    archive = into.parent / "src.tar"
    with open(archive, "wb") as out:
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", release.commit],
            stdout=out,
            check=True,
            timeout=60,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()


def _run(argv: list[str]) -> None:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
