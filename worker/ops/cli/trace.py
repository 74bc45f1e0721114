"""`relay trace EVENT_ID`: where one event is (see `worker.ops.trace`)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC, datetime

import click

from worker.ops.cli.output import json_text, masked, printable
from worker.settings import get_settings

# What each place means for an operator, in the order an event passes them.
_MEANING = {
    "waiting for correlation": "a provider's receipt waits for its correlation record until",
    "inbox": "waiting in the inbox",
    "queued": "waiting in the delivery queue",
    "in flight": "being delivered",
    "claimed": "held (in flight or parked)",
    "parked": "parked for a retry until",
    "delivered": "delivered at",
    "dead letter": "given up on:",
}


@click.command("trace")
@click.argument("event_id")
@click.option(
    "--message-id",
    "message_ids",
    multiple=True,
    help="A message id of the event (repeatable); with --target, finds its delivery with one "
    "read instead of a scan of every message hash.",
)
@click.option("--target", help="The event's target (with --message-id).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def trace_command(
    event_id: str, message_ids: tuple[str, ...], target: str | None, as_json: bool
) -> None:
    """Where EVENT_ID is: delivered when, parked until when and why, which dead letter, or
    waiting and in flight. Exit status 1 when the relay holds no trace of it."""
    from worker.ops.trace import trace
    from worker.stores.connection import get_redis

    if message_ids and not target:
        raise click.UsageError("--message-id needs --target")
    hints = [(target, mid) for mid in message_ids if target]
    found = trace(get_redis(), get_redis(raw=True), event_id, hints)
    if as_json:
        click.echo(json_text({"event_id": event_id, "found": [asdict(s) for s in found.sightings]}))
    for s in [] if as_json else found.sightings:
        when = "" if s.at is None else " " + datetime.fromtimestamp(s.at, UTC).isoformat()[:23]
        where = f" ({printable(s.target)})" if s.target else ""
        why = f"; {masked(s.why)}" if s.why else ""
        click.echo(f"{_MEANING.get(s.where, s.where)}{when}{where}: {printable(s.detail)}{why}")
    if not found.sightings:
        window = get_settings().dedup_window
        click.echo(
            f"no trace of {printable(event_id)}: never pushed, skipped as stale (an older status "
            f"than one delivered), delivered more than RELAY_DEDUP_WINDOW ({window:g}s) ago, "
            "or its dead letter was pruned",
            err=True,
        )
        sys.exit(1)
