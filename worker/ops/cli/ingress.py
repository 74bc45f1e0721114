"""`relay ingress` (the HTTP service providers call) and `relay correlate` (records)."""

from __future__ import annotations

import sys
from typing import IO

import click

from worker.config import ConfigError
from worker.settings import get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Processes (uvicorn's).")
@click.option(
    "--limit-concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Connections per process past which requests are answered 503 "
    "[default: RELAY_INGRESS_MAX_CONNECTIONS, 1000].",
)
@click.option(
    "--timeout-keep-alive",
    type=click.IntRange(min=1),
    default=None,
    help="Seconds an idle connection is kept [default: RELAY_INGRESS_KEEP_ALIVE, 75].",
)
def ingress(
    host: str,
    port: int,
    workers: int,
    limit_concurrency: int | None,
    timeout_keep_alive: int | None,
) -> None:
    """Serve the ingress: POST /v1/receipts/SOURCE, POST /v1/correlations, GET /healthz,
    GET /metrics.

    For development; in production run uvicorn itself (see the docs, "The ingress"):
    uvicorn --factory worker.ingress.app:create_app --http worker.ingress.protocol:GuardedHttp
    --limit-concurrency 1000 --timeout-keep-alive 75 --no-access-log ...
    """
    import uvicorn

    settings = get_settings()
    click.echo(f"relay ingress on http://{host}:{port} (Ctrl-C stops)", err=True)
    # No access log: a query string can hold a source's token. The protocol class adds the
    # read deadline and the header cap uvicorn does not have.
    uvicorn.run(
        "worker.ingress.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="worker.ingress.protocol:GuardedHttp",
        limit_concurrency=limit_concurrency or settings.ingress_max_connections,
        timeout_keep_alive=timeout_keep_alive or settings.ingress_keep_alive,
        access_log=False,
        log_level="warning",
    )


@click.command()
@click.argument("source", type=click.File("r", encoding="utf-8", errors="replace"), default="-")
def correlate(source: IO[str]) -> None:
    """Register correlation records from SOURCE (a file, or - for stdin), one JSON object per
    line: {"source", "provider_message_id", "target"?, "message_ids", "channel",
    "recipient"?, "conversation_id"?}.

    Receipts waiting for them are released at once. Exit status: 0 every record stored, 1 some
    were not, 2 usage error.
    """
    from worker.intake.correlate import read_lines, register_correlations

    try:
        report = register_correlations(read_lines(source))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot read {source.name}: {exc}") from None
    for problem in report.problems:
        click.echo(f"relay correlate: {problem}", err=True)
    click.echo(
        f"stored {report.stored} record(s), released {report.released} waiting receipt(s)"
        + (f"; {len(report.problems)} refused" if report.problems else "")
    )
    sys.exit(1 if report.problems else 0)
