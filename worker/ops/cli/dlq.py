"""`relay dlq`: list, show, replay and purge dead letters."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

import click

from tasks.envelope import Envelope
from worker.observe.masking import mask
from worker.ops.cli.output import cut, json_text, masked, masked_event, printable, stamp
from worker.ops.cli.retries import WIDE, print_history
from worker.stores.deadletters import REASONS, DeadLetter, DeadLetterStore
from worker.stores.ledger import EventLedger


@click.group()
def dlq() -> None:
    """Inspect and act on the dead-letter store."""


def _record(letter: DeadLetter) -> dict[str, Any]:
    return asdict(letter)


def _recipient(letter: DeadLetter) -> str:
    event = letter.event
    if isinstance(event, dict) and isinstance(event.get("receipt"), dict):  # a receipt
        event = event["receipt"]
    return printable(mask(event.get("recipient"))) if isinstance(event, dict) else "-"


@dlq.command("list")
@click.option("--target", help="Only this target's dead letters.")
@click.option("--reason", type=click.Choice(REASONS), help="Only dead letters with this reason.")
@WIDE
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of full records.")
def list_(target: str | None, reason: str | None, wide: bool, as_json: bool) -> None:
    """List dead letters, oldest first (recipients masked unless --json)."""
    letters = list(DeadLetterStore().iter(target, reason))
    if as_json:
        click.echo(json_text([_record(d) for d in letters]))
        return
    if not letters:
        click.echo("no dead letters")
        return
    width = max(len(printable(d.event_id)) for d in letters) if wide else 19
    click.echo(
        f"{'id':<17}{'failed_at (UTC)':<22}{'target':<18}{'reason':<13}{'tries':>5}  "
        f"{'event_id':<{width + 1}}{'recipient':<16}error"
    )
    for d in letters:
        click.echo(
            f"{d.id:<17}{stamp(d.failed_at):<22}{printable(d.target, 17):<18}{d.reason:<13}"
            f"{d.attempts:>5}  {cut(d.event_id, width):<{width + 1}}"
            f"{_recipient(d)[:15]:<16}{masked(d.error, None if wide else 100)}"
        )
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command()
@click.argument("letter_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full record as JSON.")
def show(letter_id: str, as_json: bool) -> None:
    """Show one dead letter: why it failed, its attempts, and the event."""
    letter = DeadLetterStore().get(letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter with id {letter_id!r}")
    if as_json:
        click.echo(json_text(_record(letter)))
        return
    for name in ("id", "event_id", "target", "reason", "attempts", "status_code"):
        click.echo(f"{name:<12}{printable(getattr(letter, name))}")
    click.echo(f"{'failed_at':<12}{stamp(letter.failed_at, ms=True)}")
    click.echo(f"{'error':<12}{masked(letter.error)}")
    print_history(letter.history)
    click.echo("event       " + masked_event(letter.event))


@dlq.command()
@click.argument("letter_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Replay every dead letter (see --target).")
@click.option("--target", help="With --all: only this target's dead letters.")
def replay(letter_ids: tuple[str, ...], all_: bool, target: str | None) -> None:
    """Queue dead letters again, as new events (attempts and age start afresh)."""
    from worker.celery import app
    from worker.intake.publish import Publisher
    from worker.settings import get_settings
    from worker.stores.connection import current_url

    publisher = Publisher(app, get_settings().bundle_size, current_url())

    store = DeadLetterStore()
    letters = _select(store, letter_ids, all_, target)
    readable = [d for d in letters if isinstance(d.event, dict) and not d.newer]
    receipts = [d for d in readable if _is_receipt(d)]
    _replay_receipts(store, receipts)
    letters = [d for d in letters if d not in receipts]
    replayable = [d for d in readable if d not in receipts and not _is_callback(d)]
    for d in letters:
        if d not in replayable:
            click.echo(f"{d.id}: {_why_not_replayable(d)}", err=True)
    # Clear first (what the dead envelope still holds), queue second, remove third: a crash in
    # between replays twice rather than losing one.
    ledger = EventLedger()
    show_bar = sys.stderr.isatty() and len(replayable) > 1000
    with click.progressbar(
        replayable, label="replaying", file=sys.stderr, hidden=not show_bar
    ) as bar:
        for start in range(0, len(replayable), 500):
            chunk = replayable[start : start + 500]
            ledger.mark([c for c in (d.claims() for d in chunk) if c is not None])
            publisher.publish(Envelope(d.event).to_dict() for d in chunk)
            store.remove([d.id for d in chunk])
            bar.update(len(chunk))
    click.echo(f"replayed {len(replayable) + len(receipts)} dead letter(s)")
    if len(replayable) < len(letters):
        raise SystemExit(1)


def _is_receipt(letter: DeadLetter) -> bool:
    """A provider's receipt held as it waited (`uncorrelated`, `forbidden`, future-dated):
    replayed through correlation, by its record."""
    return isinstance(letter.event, dict) and isinstance(letter.event.get("receipt"), dict)


def _is_callback(letter: DeadLetter) -> bool:
    """A callback the ingress could not read, kept as a prefix and a hash: not an event."""
    return isinstance(letter.event, dict) and "body_sha256" in letter.event


def _why_not_replayable(letter: DeadLetter) -> str:
    if letter.newer:
        return f"written by a newer relay version (format v{letter.v}); replay it with that version"
    if _is_callback(letter):
        return "a provider's callback the ingress could not read, not an event; purge it"
    return "not replayable (the line was not a JSON object); purge it or push a corrected line"


def _replay_receipts(store: DeadLetterStore, letters: list[DeadLetter]) -> None:
    """Put receipts back through correlation: delivered if their record exists now, else
    waiting for it again (the source's correlation_wait); stops, keeping the rest, when the
    inbox is full."""
    if not letters:
        return
    from worker.cells.cells import get_cells
    from worker.config import ConfigError, load_config
    from worker.settings import get_settings
    from worker.sources import DEFAULT_CORRELATION_WAIT
    from worker.stores.bounds import InboxFull
    from worker.stores.correlations import Correlations

    try:
        sources = load_config(get_settings().config_path, secrets_for=()).sources
    except ConfigError:
        sources = {}
    cells = get_cells()
    for letter in letters:
        source = sources.get(letter.event.get("source"))
        wait = source.correlation_wait if source else DEFAULT_CORRELATION_WAIT
        pmid = letter.event["receipt"].get("provider_message_id")
        try:  # in the cell where its record is registered (the letter may be kept elsewhere)
            with cells.inside(cells.of_receipt(str(letter.event.get("source")), str(pmid))):
                went = Correlations().resubmit(letter.event, wait)
        except InboxFull as exc:
            raise click.ClickException(f"{letter.id} and after: kept; {exc}") from None
        store.remove([letter.id])
        click.echo(f"{letter.id}: " + ("correlated, queued" if went else "waiting for its record"))


@dlq.command()
@click.argument("letter_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Remove every dead letter (see --target).")
@click.option("--target", help="With --all: only this target's dead letters.")
def purge(letter_ids: tuple[str, ...], all_: bool, target: str | None) -> None:
    """Remove dead letters for good."""
    store = DeadLetterStore()
    letters = _select(store, letter_ids, all_, target)
    click.echo(f"purged {store.remove([d.id for d in letters])} dead letter(s)")


def _select(
    store: DeadLetterStore, ids: tuple[str, ...], all_: bool, target: str | None
) -> list[DeadLetter]:
    if bool(ids) == all_:
        raise click.UsageError("give dead-letter ids or --all (not both)")
    if target and not all_:
        raise click.UsageError("--target goes with --all")
    if all_:
        return list(store.iter(target=target))
    letters = []
    for letter_id in ids:
        letter = store.get(letter_id)
        if letter is None:
            raise click.ClickException(f"no dead letter with id {letter_id!r}")
        letters.append(letter)
    return letters
