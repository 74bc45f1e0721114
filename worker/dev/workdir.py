"""The directory one `relay dev` run works in: its targets file, its Redis's directory and its
processes' logs. At the end only the logs stay (a failing worker's log is what one wants to
read after Ctrl-C); the next run removes what earlier, finished runs left."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "relay-dev-"
MARKER = "relay-dev.pid"  # the run's process id: a directory without it is not ours to remove


class Workdir:
    """A fresh `relay-dev-*` directory under the system's temporary directory."""

    def __init__(self, base: str | None = None) -> None:
        self.base = Path(base or tempfile.gettempdir())
        self.pruned = prune(self.base)
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.base))
        (self.path / MARKER).write_text(str(os.getpid()))

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def logs(self) -> list[str]:
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*.log"))

    def keep_logs(self) -> list[str]:
        """Remove everything but the logs (and the marker, so a later run may remove them)."""
        for path in sorted(self.path.rglob("*"), key=lambda p: -len(p.parts)):
            if path.is_dir():
                with contextlib.suppress(OSError):  # not empty: it holds a log
                    path.rmdir()
            elif path.suffix != ".log" and path.name != MARKER:
                path.unlink(missing_ok=True)
        return self.logs()


def prune(base: Path) -> int:
    """Remove the directories of `relay dev` runs that have ended; how many went."""
    removed = 0
    for path in base.glob(PREFIX + "*"):
        try:
            pid = int((path / MARKER).read_text())
        except (OSError, ValueError):
            continue  # not a run of this version's, or not finished writing its marker
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process of that id: leave it
        return True
    return True
