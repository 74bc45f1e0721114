"""`relay retries`: the events parked in the retry schedule, their attempt history, and sending
them now once their target is back."""

from __future__ import annotations

import sys
from typing import Any

import click

from tasks.envelope import Envelope
from worker.observe.masking import mask
from worker.ops.cli.output import cut, json_text, printable, stamp
from worker.stores.retries import RetrySchedule

WIDE = click.option(
    "--wide", is_flag=True, help="Print ids whole (the table cuts long ones to fit)."
)


@click.group()
def retries() -> None:
    """Inspect events waiting for their next attempt, and send them now."""


def _record(envelope: Envelope, due: float) -> dict[str, Any]:
    event = envelope.event if isinstance(envelope.event, dict) else {}
    return {
        "id": envelope.id,
        "event_id": event.get("event_id"),
        "target": event.get("target"),
        "status": event.get("status"),
        "attempts": envelope.attempts,
        "next_attempt_at": stamp(due),
        "first_seen": stamp(envelope.first_seen),
        "history": envelope.history,
        "event": envelope.event,
    }


def parked(ids: tuple[str, ...] = ()) -> list[tuple[Envelope, float]]:
    """Parked envelopes, soonest first; with `ids`, those whose envelope id or event id is
    one of them."""
    found = [(e, due) for e, due in RetrySchedule().iter() if e is not None]
    if ids:
        found = [(e, due) for e, due in found if e.id in ids or _event_id(e) in ids]
    return sorted(found, key=lambda entry: entry[1])


def _event_id(envelope: Envelope) -> object:
    return envelope.event.get("event_id") if isinstance(envelope.event, dict) else None


@retries.command("list")
@click.option("--target", help="Only this target's parked events.")
@WIDE
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of full records.")
def list_(target: str | None, wide: bool, as_json: bool) -> None:
    """List parked events, soonest first (recipients masked unless --json)."""
    records = [_record(e, due) for e, due in parked()]
    records = [r for r in records if target is None or r["target"] == target]
    if as_json:
        click.echo(json_text(records))
        return
    if not records:
        click.echo("no retries waiting")
        return
    width = max(len(printable(r["event_id"])) for r in records) if wide else 21
    click.echo(
        f"{'id':<34}{'next attempt (UTC)':<22}{'target':<18}{'tries':>5}  "
        f"{'event_id':<{width + 1}}{'recipient':<16}last error"
    )
    for r in records:
        last = r["history"][-1] if r["history"] else {}
        recipient = mask(r["event"].get("recipient")) if isinstance(r["event"], dict) else "-"
        click.echo(
            f"{r['id']:<34}{r['next_attempt_at']:<22}{printable(r['target'], 17):<18}"
            f"{r['attempts']:>5}  {cut(r['event_id'], width):<{width + 1}}"
            f"{recipient[:15]:<16}{last.get('status') or last.get('error') or '-'}"
        )
    click.echo(f"{len(records)} retry(ies) waiting")


@retries.command()
@click.argument("parked_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full record(s) as JSON.")
def show(parked_id: str, as_json: bool) -> None:
    """Show a parked event and every attempt made so far. PARKED_ID: its event id, or the id
    `relay retries list` shows (a Salesforce failure parks one per message id)."""
    records = [_record(e, due) for e, due in parked((parked_id,))]
    if not records:
        raise click.ClickException(f"no parked retry with id or event id {parked_id!r}")
    if as_json:
        click.echo(json_text(records[0] if len(records) == 1 else records))
        return
    for record in records:
        for name in ("id", "event_id", "target", "status", "attempts", "first_seen"):
            click.echo(f"{name:<16}{printable(record[name])}")
        click.echo(f"{'next_attempt_at':<16}{record['next_attempt_at']}")
        print_history(record["history"])


@retries.command()
@click.argument("ids", nargs=-1)
@click.option("--target", help="Every event parked for this target.")
@click.option("--all", "all_", is_flag=True, help="Every parked event.")
def now(ids: tuple[str, ...], target: str | None, all_: bool) -> None:
    """Send parked events now instead of at their due time: after an outage, once the target
    answers again. IDS: event ids or the ids `relay retries list` shows.

    Their due time moves to now, in one step on Redis; workers send them within a second or
    two. Those due within RELAY_RETRY_LEASE (+5 s) are left as they are: a worker may be
    taking them this instant, and they go by then anyway. An open circuit of their target is
    closed, or it would hold them back. Exit status 1 when an id is not parked.
    """
    from worker.ops.retries_now import send_now

    if (bool(ids) + bool(target) + all_) != 1:
        raise click.UsageError("give event ids, --target T or --all (one of them)")
    report = send_now(lambda e: _chosen(e, ids, target))
    for line in report.lines():
        click.echo(line)
    found = {e.id for e in report.chosen} | {str(_event_id(e)) for e in report.chosen}
    missing = [i for i in ids if i not in found]
    for unknown in missing:
        click.echo(f"relay retries now: nothing parked with id or event id {unknown!r}", err=True)
    sys.exit(1 if missing else 0)


def _chosen(envelope: Envelope, ids: tuple[str, ...], target: str | None) -> bool:
    """Picked by id or event id when ids are given, else by target (every one for --all)."""
    if ids:
        return envelope.id in ids or _event_id(envelope) in ids
    event = envelope.event if isinstance(envelope.event, dict) else {}
    return target is None or event.get("target") == target


def print_history(history: list[dict[str, Any]]) -> None:
    """One line per attempt: when, what, the answer or network error, how long."""
    for attempt in history:
        answer = attempt.get("status") or attempt.get("error") or "-"
        click.echo(
            f"  attempt {attempt.get('attempt')} at {stamp(attempt.get('at'), ms=True)}: "
            f"{attempt.get('endpoint')} -> {answer} in "
            f"{float(attempt.get('duration') or 0) * 1000:.0f} ms ({attempt.get('outcome')})"
        )
