"""`relay trace`: where an event is (see `worker.ops.trace`), found by its event id, by its
provider's message id, or by its target's message id."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

import click

from worker.ops.cli.output import json_text, masked, printable, stamp
from worker.settings import get_settings

# What each place means for an operator, in the order an event passes them; with a time, the
# meaning reads on into it ("parked for a retry until 2026-...").
_MEANING = {
    "waiting for correlation": "waiting for its correlation record until",
    "inbox": "waiting in the inbox",
    "queued": "waiting in the delivery queue",
    "in flight": "being delivered",
    "claimed": "being delivered or parked",
    "parked": "parked for a retry until",
    "delivered": "delivered at",
    "dead letter": "dead letter",
}

_HINT = (
    ". A provider's message id (MessageSid, wamid...) is traced with --source SOURCE ID; a "
    "target's message id with --target TARGET --message-id ID"
)


@click.command("trace")
@click.argument("wanted_id", metavar="[EVENT_ID | PROVIDER_MESSAGE_ID]", required=False)
@click.option(
    "--source",
    help="Trace the events the ingress made of a provider's message: the argument is the "
    "provider's message id (MessageSid, wamid..., message_uuid, messageId, SMPP id) and this "
    "the source it came through.",
)
@click.option("--target", help="The events' target (with --message-id).")
@click.option(
    "--message-id",
    "message_ids",
    multiple=True,
    help="A target message id (repeatable). Without EVENT_ID: every event of that message. "
    "With EVENT_ID: where to read its delivery (one read instead of a scan).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def trace_command(
    wanted_id: str | None,
    source: str | None,
    target: str | None,
    message_ids: tuple[str, ...],
    as_json: bool,
) -> None:
    """Where an event is: delivered when, parked until when and why, which dead letter, or
    waiting and in flight. Three ways to name it:

    \b
      relay trace EVENT_ID
      relay trace --source SOURCE PROVIDER_MESSAGE_ID   (events made from a provider's receipts)
      relay trace --target TARGET --message-id ID       (every event of that target message)

    Exit status 1 when the relay holds no trace of it, 2 for a usage error.
    """
    from worker.ops.trace import trace
    from worker.stores.connection import get_redis

    wanted = _wanted(wanted_id, source, target, message_ids)
    found = trace(get_redis(), get_redis(raw=True), wanted)
    if as_json:
        click.echo(json_text(_document(wanted_id, source, found)))
    else:
        for s in found.sightings:
            click.echo(_line(s, show_event=not wanted.single))
    if not found.sightings:
        window = get_settings().dedup_window
        click.echo(
            f"no trace of {printable(wanted.label)}: never pushed, skipped as stale (an older "
            f"status than one delivered), delivered more than RELAY_DEDUP_WINDOW ({window:g}s) "
            "ago, or its dead letter was pruned"
            + (_HINT if wanted.single and not wanted.label.startswith("rcpt-") else ""),
            err=True,
        )
        sys.exit(1)


def _wanted(
    wanted_id: str | None, source: str | None, target: str | None, message_ids: tuple[str, ...]
) -> Any:
    from worker.ops.wanted import by_event_id, by_message, by_receipt

    if message_ids and not target:
        raise click.UsageError("--message-id needs --target")
    if source:
        if not wanted_id or message_ids:
            raise click.UsageError("--source needs the provider's message id, and no --message-id")
        return by_receipt(source, wanted_id, _recorded(source, wanted_id))
    if wanted_id:
        return by_event_id(wanted_id, [(target, mid) for mid in message_ids if target])
    if len(message_ids) != 1:
        raise click.UsageError(
            "give an EVENT_ID, --source S with a provider's message id, or "
            "--target T with one --message-id M"
        )
    return by_message(str(target), message_ids[0])


def _recorded(source: str, pmid: str) -> list[tuple[str, str]]:
    """The target messages a correlation record names for this provider message, if one is
    still kept (their claims say what was delivered)."""
    from worker.stores.correlations import Correlations

    record = Correlations().lookup(source, pmid)
    return [(record.target, mid) for mid in record.message_ids] if record and record.target else []


def _line(s: Any, show_event: bool) -> str:
    when = "" if s.at is None else " " + stamp(s.at, ms=True)
    target = f" for {printable(s.target)}" if s.target else ""
    why = f"; {masked(s.why)}" if s.why else ""
    event = f"{printable(s.event_id)}: " if show_event and s.event_id else ""
    return f"{event}{_MEANING.get(s.where, s.where)}{when}{target}: {printable(s.detail)}{why}"


def _document(wanted_id: str | None, source: str | None, found: Any) -> dict[str, Any]:
    asked: dict[str, Any] = (
        {"source": source, "provider_message_id": wanted_id}
        if source
        else {"event_id": wanted_id}
        if wanted_id
        else {"message": found.wanted.label}
    )
    return {**asked, "found": [asdict(s) for s in found.sightings]}
