"""`relay retries`: the events parked in the retry schedule, and their attempt history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from tasks.envelope import Envelope
from worker.observe.masking import mask
from worker.ops.cli.output import json_text, printable
from worker.stores.retries import RetrySchedule


@click.group()
def retries() -> None:
    """Inspect events waiting for their next attempt."""


def _record(envelope: Envelope, due: float) -> dict[str, Any]:
    event = envelope.event if isinstance(envelope.event, dict) else {}
    return {
        "id": envelope.id,
        "event_id": event.get("event_id"),
        "target": event.get("target"),
        "status": event.get("status"),
        "attempts": envelope.attempts,
        "next_attempt_at": datetime.fromtimestamp(due, UTC).isoformat(),
        "first_seen": datetime.fromtimestamp(envelope.first_seen, UTC).isoformat(),
        "history": envelope.history,
        "event": envelope.event,
    }


@retries.command("list")
@click.option("--target", help="Only this target's parked events.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of full records.")
def list_(target: str | None, as_json: bool) -> None:
    """List parked events, soonest first (recipients masked unless --json)."""
    parked = [(e, due) for e, due in RetrySchedule().iter() if e is not None]
    records = [_record(e, due) for e, due in sorted(parked, key=lambda x: x[1])]
    records = [r for r in records if target is None or r["target"] == target]
    if as_json:
        click.echo(json_text(records))
        return
    if not records:
        click.echo("no retries waiting")
        return
    click.echo(
        f"{'id':<34}{'next attempt (UTC)':<21}{'target':<18}{'tries':>5}  "
        f"{'event_id':<22}{'recipient':<16}last error"
    )
    for r in records:
        last = r["history"][-1] if r["history"] else {}
        recipient = mask(r["event"].get("recipient")) if isinstance(r["event"], dict) else "-"
        click.echo(
            f"{r['id']:<34}{r['next_attempt_at'][:19]:<21}{printable(r['target'], 17):<18}"
            f"{r['attempts']:>5}  {printable(r['event_id'], 21):<22}{recipient[:15]:<16}"
            f"{last.get('status') or last.get('error') or '-'}"
        )
    click.echo(f"{len(records)} retry(ies) waiting")


@retries.command()
@click.argument("envelope_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full record as JSON.")
def show(envelope_id: str, as_json: bool) -> None:
    """Show one parked event and every attempt made so far."""
    found = [_record(e, due) for e, due in RetrySchedule().iter() if e and e.id == envelope_id]
    if not found:
        raise click.ClickException(f"no parked retry with id {envelope_id!r}")
    record = found[0]
    if as_json:
        click.echo(json_text(record))
        return
    for name in ("id", "event_id", "target", "status", "attempts", "first_seen", "next_attempt_at"):
        click.echo(f"{name:<16}{record[name]}")
    print_history(record["history"])


def print_history(history: list[dict[str, Any]]) -> None:
    """One line per attempt: when, what, the answer or network error, how long."""
    for attempt in history:
        at = datetime.fromtimestamp(float(attempt.get("at", 0)), UTC).isoformat()[:23]
        answer = attempt.get("status") or attempt.get("error") or "-"
        click.echo(
            f"  attempt {attempt.get('attempt')} at {at}: {attempt.get('endpoint')} -> "
            f"{answer} in {float(attempt.get('duration') or 0) * 1000:.0f} ms "
            f"({attempt.get('outcome')})"
        )
