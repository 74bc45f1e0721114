"""Which process listens on a local TCP port, and whose child it is, read from Linux's /proc:
how a test tells a URL `relay dev` printed from someone else's."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def listener(port: int) -> int | None:
    """The id of the process listening on TCP `port` (any local address), if any."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid_dir in PROC.glob("[0-9]*"):
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:
            continue
        if any(_link(fd) in wanted for fd in fds):
            return int(pid_dir.name)
    return None


def _link(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return ""


def ancestors(pid: int) -> list[int]:
    """`pid` and its parents, up to the first process."""
    chain = [pid]
    while pid > 1:
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def with_environment(text: str) -> list[int]:
    """Processes whose environment holds `text` (e.g. a path only one run's children have)."""
    found = []
    for pid_dir in PROC.glob("[0-9]*"):
        try:
            if text.encode() in (pid_dir / "environ").read_bytes():
                found.append(int(pid_dir.name))
        except OSError:
            continue
    return found
