"""`relay reference`: signed echoed references for the sending side."""

from __future__ import annotations

import json
import os
import sys

import click

from tasks.upstream.correlation import BadCorrelation
from worker.config import ConfigError


@click.command("reference")
@click.argument("reference", default="-")
@click.option(
    "--source",
    help="The source whose receipts will echo it: signed with its reference_key (from "
    "RELAY_CONFIG), its target checked to be one of the source's own.",
)
@click.option(
    "--key-env",
    metavar="VAR",
    help="Sign with the key in this environment variable (without --source, or instead of "
    "the source's reference_key).",
)
def reference_command(reference: str, source: str | None, key_env: str | None) -> None:
    """Print REFERENCE signed, for the sending side to hand the provider: the JSON as given, a
    dot, and its HMAC-SHA256 under the key (base64url).

    REFERENCE is a JSON object {"target"?, "message_ids", "channel", "conversation_id"?,
    "recipient"?}, or - to read one per line from stdin (one signed reference printed per
    line). The key itself is never printed. Exit status: 0 all signed, 1 some were not, 2
    usage error.
    """
    from tasks.upstream.references import sign_reference
    from worker.intake.correlate import signed_reference

    if not source and not key_env:
        raise click.UsageError("give --source, --key-env VAR, or both")
    key = os.environ.get(key_env or "") if key_env else None
    if key_env and not key:
        raise click.UsageError(f"the environment variable {key_env} is not set")
    lines = [reference] if reference != "-" else [x for x in sys.stdin if x.strip()]
    failed = 0
    for number, line in enumerate(lines, start=1):
        try:
            if source:
                click.echo(signed_reference(line.strip(), source, key=key))
            else:
                click.echo(sign_reference(line.strip(), key or ""))
        except (BadCorrelation, ValueError, ConfigError) as exc:
            where = f"line {number}: " if reference == "-" else ""
            click.echo(f"relay reference: {where}{_one_line(exc)}", err=True)
            failed += 1
    sys.exit(1 if failed else 0)


def _one_line(exc: Exception) -> str:
    return json.dumps(str(exc))[1:-1] if "\n" in str(exc) else str(exc)
