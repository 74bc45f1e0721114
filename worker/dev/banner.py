"""What `relay dev` tells its user: where everything it started is (and only what it
started), and lines to copy into another shell: the environment, a first event pushed with
`redis-cli` as any language would, and the `relay` commands that look at it."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.settings import safe_url

FIRST_EVENT_ID = "ev-first-1"


@dataclass(frozen=True)
class Place:
    """One thing `relay dev` runs: what it is, its address (None: not serving), a note."""

    name: str
    address: str | None
    note: str = ""


@dataclass(frozen=True)
class Shell:
    """What another shell needs to reach this run."""

    redis_url: str
    own_redis: bool
    """True when the Redis is this run's own (no password; its URL may be printed)."""
    key_prefix: str
    queue: str


def relay_command() -> str:
    """How `relay` is run from the user's shell: `relay` when that is this one on PATH, else
    its path (`.venv/bin/relay` from the project's folder), so nothing needs activating."""
    here = Path(sys.executable).parent / "relay"
    if not here.exists():
        return f"{shlex.quote(sys.executable)} -m worker.ops.cli.main"
    on_path = shutil.which("relay")
    if on_path and Path(on_path).resolve() == here.resolve():
        return "relay"
    try:
        return str(here.relative_to(Path.cwd()))
    except ValueError:
        return str(here)


def first_event(target: str) -> dict[str, object]:
    """A valid event for `target` (a Medallia one: no conversation id needed)."""
    return {
        "event_id": FIRST_EVENT_ID,
        "target": target,
        "status": "delivered",
        "message_ids": ["m-first-1"],
        "channel": "page-1",
        "recipient": "+4915112345678",
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def places_text(places: Sequence[Place]) -> list[str]:
    lines = []
    for place in places:
        address = place.address or "not serving (see its log)"
        lines.append(f"  {place.name:<9}{address}" + (f"  ({place.note})" if place.note else ""))
    return lines


def shell_text(shell: Shell, target: str) -> list[str]:
    """Lines to copy into another shell, each a command that works as printed."""
    relay = relay_command()
    exports = [] if not shell.own_redis else [f"REDIS_URL={shlex.quote(shell.redis_url)}"]
    exports += [
        f"{name}={shlex.quote(value)}"
        for name, value, default in (
            ("RELAY_KEY_PREFIX", shell.key_prefix, "relay"),
            ("RELAY_QUEUE", shell.queue, "relay"),
        )
        if value != default
    ]
    inbox = f"{shell.key_prefix}:inbox"
    event = shlex.quote(json.dumps(first_event(target)))
    reach = f"-p {_port(shell.redis_url)}" if shell.own_redis else '-u "$REDIS_URL"'
    push = (
        f"redis-cli {reach} RPUSH {shlex.quote(inbox)} {event}"
        if shutil.which("redis-cli")
        else f"echo {event} | {relay} push -"
    )
    lines = ["relay dev: try it from another shell (copy and paste):"]
    if exports:
        lines.append("  export " + " ".join(exports))
    if not shell.own_redis:
        lines.append(f"  # REDIS_URL: yours ({safe_url(shell.redis_url)})")
    lines += [f"  {push}", f"  {relay} trace {FIRST_EVENT_ID}", f"  {relay} status"]
    lines.append(f"  {relay} dlq list")
    lines.append(
        f"relay dev: events go onto the Redis list {inbox} (keys under {shell.key_prefix}:)"
    )
    return lines


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1].split("/", 1)[0]
