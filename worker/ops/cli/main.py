"""`relay`, the operator's command line: push events, inspect state, check config, run locally."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click
import redis

from worker.config import ConfigError, load_config
from worker.observe.masking import mask_text
from worker.ops.cli.cells import cell_for, spread_over_cells
from worker.ops.cli.dlq import dlq
from worker.ops.cli.ingress import correlate, ingress
from worker.ops.cli.reference import reference_command
from worker.ops.cli.retries import retries
from worker.ops.cli.trace import trace_command
from worker.settings import get_settings
from worker.stores.connection import CLI_PATIENCE, use_patience
from worker.stores.reach import describe


class RelayGroup(click.Group):
    """`relay`'s commands, whose Redis trouble ends as one line saying what is wrong and what
    to do (a wrong password is not an outage), never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except redis.RedisError as exc:
            raise click.ClickException(redis_problem(exc)) from None


def redis_problem(exc: redis.RedisError) -> str:
    """What `exc` means for the operator, with REDIS_URL's password left out."""
    return describe(exc, get_settings().redis_url).message


@click.group(cls=RelayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Relay delivery-status events to Salesforce and Medallia.

    Reads REDIS_URL (default redis://127.0.0.1:6379/0) and RELAY_CONFIG (the targets file,
    default relay.toml), like the worker (`celery -A worker worker`).

    Exit status: 0 done; 1 the command ran but something was not done, or Redis could not be
    used (the message says why: unreachable, or a wrong or missing password); 2 usage error.
    """
    # An operator's command answers within seconds; the ingress serves as in production.
    if ctx.invoked_subcommand != "ingress":
        use_patience(CLI_PATIENCE)


main.add_command(dlq)
main.add_command(retries)
main.add_command(ingress)
main.add_command(correlate)
main.add_command(reference_command)
main.add_command(trace_command)
main.add_command(cell_for)


@main.command()
@click.argument("source", type=click.File("rb"), default="-")
def push(source: IO[bytes]) -> None:
    """Publish events from SOURCE (a file, or - for stdin), one JSON object per line.

    A line that is not UTF-8 JSON (or too big, or nested too deep) is reported with its line
    number and stored as a dead letter (reason `invalid`). When the inbox is full
    (RELAY_INBOX_MAX) the push stops and says how many were queued. Exit status: 0 all lines
    queued, 1 some were not, 2 usage error.
    """
    from worker.intake.push import push_lines

    try:
        with _progress(source, "pushing") as advance:
            report = push_lines(source, advance)
    except OSError as exc:
        raise click.ClickException(f"cannot read {source.name}: {exc}") from None
    for problem in report.problems:
        click.echo(f"relay push: {mask_text(problem)}", err=True)
    if report.full:
        click.echo(f"relay push: {report.full}", err=True)
    bad = len(report.problems)
    click.echo(
        f"queued {report.queued} event(s)"
        + (f"; {bad} line(s) dead-lettered as invalid" if bad else "")
    )
    sys.exit(1 if bad or report.full else 0)


@contextlib.contextmanager
def _progress(source: IO[bytes], label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar over SOURCE's bytes, shown only to a person at a terminal."""
    size = 0
    with contextlib.suppress(OSError, ValueError):
        size = os.fstat(source.fileno()).st_size
    if not (sys.stderr.isatty() and size > 1_000_000):
        yield lambda n: None
        return
    with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
        yield bar.update


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(as_json: bool) -> None:
    """Queue depth, retries waiting, dead letters and outcome counts, by target."""
    from worker.ops.status import collect_status, render_status

    report = collect_status()
    click.echo(json.dumps(report, indent=2) if as_json else render_status(report))


@main.command()
@click.option(
    "--max-idle",
    default=120.0,
    show_default=True,
    help="Seconds a worker may go without a task while messages wait.",
)
@click.option("--worker", "worker_name", help="Check only this worker (its Celery hostname).")
@click.option(
    "--redis-down-ok",
    is_flag=True,
    help="Exit 0 when Redis cannot be reached: workers ride out a Redis outage, so a liveness "
    "probe must not restart them for one. A wrong or missing password, or a database Redis "
    "does not have, still fails: that is a configuration error, not an outage.",
)
def health(max_idle: float, worker_name: str | None, redis_down_ok: bool) -> None:
    """Exit 1 if no worker is alive, or messages wait while workers receive nothing.

    Catches Celery's silent stop after a Redis reconnect (celery #8030, #10302); use it as a
    liveness probe: `relay health --redis-down-ok --worker celery@$POD_NAME`. Exit status: 0
    healthy (or Redis unreachable, with --redis-down-ok); 1 unhealthy, Redis unreachable, or
    Redis refusing REDIS_URL's password or database (with --redis-down-ok too).
    """
    from worker.intake.inflight import stuck
    from worker.ops.status import backlog
    from worker.stores.connection import get_redis
    from worker.stores.liveness import check_health

    try:
        problems = check_health(backlog(), max_idle, worker_name) + stuck(get_redis(), worker_name)
    except redis.RedisError as exc:
        trouble = describe(exc, get_settings().redis_url)
        if redis_down_ok and trouble.outage:
            click.echo(f"healthy as far as can be told: Redis unreachable ({exc})")
            return
        raise click.ClickException(trouble.message) from None
    for problem in problems:
        click.echo(f"unhealthy: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("healthy")


_SECRETS_FOR = {"all": ("targets", "sources"), "worker": ("targets",), "ingress": ("sources",)}


@main.command("check-config")
@click.option(
    "--for",
    "role",
    type=click.Choice(sorted(_SECRETS_FOR)),
    default="all",
    show_default=True,
    help="Check the secrets this component is given: a worker the targets', the ingress the "
    "sources'.",
)
def check_config(role: str) -> None:
    """Validate RELAY_CONFIG; list every problem and exit 1 if there is any."""
    settings = get_settings()
    path = settings.config_path
    try:
        config = load_config(path, secrets_for=_SECRETS_FOR[role])
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"{path}: OK, {len(config.targets)} target(s)")
    for target in config.targets.values():
        click.echo(
            f"  {target.name}: {target.kind} at {target.base_url} (auth {target.auth.type}, "
            f"timeout {target.timeout:g}s, max_attempts {target.retry.max_attempts})"
        )
    for source in config.sources.values():
        own = ", ".join(sorted(source.targets)) or "none: records only"
        click.echo(
            f"  source {source.name}: {source.kind} (default target {source.target or '-'}, "
            f"correlation_wait {source.correlation_wait:g}s; references to {own}"
            f"{', signed' if source.reference_key else ''}; max_receipts {source.max_receipts}, "
            f"{source.receipts_per_second:g} receipts/s, max_waiting {source.max_waiting}, "
            f"max_dead_letters {source.max_dead_letters})"
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True, type=int)
@click.option(
    "--latency", default=0.0, show_default=True, type=float, help="Seconds added to every answer."
)
@click.option(
    "--play",
    type=click.Choice(["twilio", "whatsapp", "vonage", "infobip", "smpp_dlr"]),
    help="Play a provider instead: send one signed callback to --to and exit.",
)
@click.option("--to", "to_url", help="With --play: the ingress URL, .../v1/receipts/SOURCE.")
@click.option("--secret", envvar="RELAY_PLAY_SECRET", help="With --play: the source's secret.")
@click.option("--message-id", default="SMplay0001", show_default=True)
@click.option("--status", "provider_status", default="delivered", show_default=True)
@click.option("--error-code", default=None, help="With --play: the provider's error code.")
@click.option("--ref", default=None, help="With --play: the echoed reference, JSON.")
def sandbox(host: str, port: int, latency: float, play: str | None, **options: Any) -> None:
    """Serve local look-alikes of both APIs that check every request against the vendor docs.

    Salesforce base_url: http://HOST:PORT/salesforce; Medallia: http://HOST:PORT/medallia.
    Faults: POST /_sandbox/faults {"api": "any", "status": 503, "times": 2, "retry_after": "5"};
    recorded requests: GET /_sandbox/requests.

    With --play KIND it plays a messaging provider instead: one correctly signed callback to
    an ingress (--to, --secret or RELAY_PLAY_SECRET, --message-id, --status, --error-code,
    --ref), the answer printed; exit 0 on a 2xx answer.
    """
    if play:
        _play(play, **options)
        return
    from worker.dev.sandbox import Sandbox

    click.echo(f"sandbox on http://{host}:{port} (Ctrl-C stops)")
    Sandbox(latency=latency).serve_forever(host, port)


@main.command()
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
def dev(duration: float | None) -> None:
    """Run everything locally: Redis, the sandbox APIs, Flower, a worker, the ingress, and
    sample events.

    Without REDIS_URL it starts its own Redis and uses the default keys (events go onto
    relay:inbox); with REDIS_URL it uses that Redis under the prefix relay-dev. Every address
    it prints is its own (ports the kernel picked). Its banner gives lines to copy into another
    shell: the environment, a first event pushed with redis-cli, relay commands. Ctrl-C (or
    SIGTERM) stops everything it started and keeps only the logs, whose folder it names.
    Exit status: 0 the samples settled (and it was stopped or its --duration ended), 1 not.
    """
    from worker.dev.run import run_dev

    sys.exit(run_dev(duration))


def _play(
    kind: str,
    to_url: str | None,
    secret: str | None,
    message_id: str,
    provider_status: str,
    error_code: str | None,
    ref: str | None,
) -> None:
    """`relay sandbox --play`: one signed callback, as the provider would send it."""
    from worker.dev.callbacks import BUILDERS, Message
    from worker.dev.receipts import send

    if not to_url or not secret:
        raise click.UsageError("--play needs --to URL and --secret (or RELAY_PLAY_SECRET)")
    try:
        reference = json.loads(ref) if ref else None
    except ValueError:
        raise click.UsageError("--ref must be JSON") from None
    message = Message(message_id, provider_status, error_code=error_code, reference=reference)
    try:
        status, body = send(BUILDERS[kind](to_url, secret, [message]))
    except OSError as exc:
        raise click.ClickException(f"cannot reach {to_url}: {exc}") from None
    click.echo(f"{kind} callback to {to_url}: {status} {body.decode(errors='replace')[:200]}")
    sys.exit(0 if 200 <= status < 300 else 1)


spread_over_cells(main)

if __name__ == "__main__":
    main()
