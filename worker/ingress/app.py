"""The ingress's ASGI application: routes, the correlations endpoint, health and metrics.

Stateless: every process (uvicorn `--workers N`, or many hosts behind a load balancer) serves
any request; all state is in Redis. Production:

    uvicorn --factory worker.ingress.app:create_app --host 0.0.0.0 --port 8080 --workers 4 \\
        --loop uvloop --http worker.ingress.protocol:GuardedHttp --no-access-log \\
        --limit-concurrency 1000 --timeout-keep-alive 75

Bounded at its edge (`worker.ingress.protocol` for the connection and the read deadline,
`worker.ingress.admission` for requests and body bytes in progress).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sys
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tasks.upstream.correlation import BadCorrelation
from worker.config import ConfigError, RelayConfig, load_config
from worker.ingress.admission import Admission
from worker.ingress.cells import storage_for
from worker.ingress.http import (
    Receive,
    Scope,
    Send,
    answer,
    answer_json,
    body_or_answer,
    unread_body,
)
from worker.ingress.receipts import Receipts
from worker.ingress.storing import STORE_ERRORS, Storage
from worker.intake.correlate import check_record
from worker.observe import logs
from worker.observe.metrics import INGRESS_REQUESTS, INGRESS_SECONDS
from worker.observe.secrets import process_secrets
from worker.observe.sentry import init_sentry
from worker.settings import Settings, get_settings

log = logging.getLogger("relay.ingress")
RECEIPTS_PATH = "/v1/receipts/"
UNBOUNDED = frozenset({"/healthz", "/metrics"})  # probes: cheap, and must answer when busy


class Ingress:
    """The ASGI callable."""

    def __init__(self, config: RelayConfig, settings: Settings, storage: Storage | None = None):
        self.config = config
        self.settings = settings
        self.storage = storage or storage_for(settings)
        self.admission = Admission(settings.ingress_max_in_progress, settings.ingress_body_budget)
        self.receipts = Receipts(dict(config.sources), self.storage, settings, self.admission)
        self._metrics: dict[tuple[str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        label, outcome = await self._bounded(scope, receive, send)
        counter, histogram = self._metrics.get((label, outcome)) or self._children(label, outcome)
        counter.inc()
        histogram.observe(time.perf_counter() - started)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> tuple[str, str]:
        """Serve the request if fewer than RELAY_INGRESS_MAX_IN_PROGRESS are; else 503 at once
        (its body passed over when small, else the connection closed)."""
        if scope["path"] in UNBOUNDED:
            return await self._route(scope, receive, send)
        if self.admission.enter():
            try:
                return await self._route(scope, receive, send)
            finally:
                self.admission.leave()
        headers = (
            (b"retry-after", b"1"),
            *unread_body(scope, self.settings.ingress_max_form_bytes),
        )
        await answer(send, 503, b"busy; try again\n", headers=headers)
        return "-", "busy"

    def _children(self, label: str, outcome: str) -> tuple[Any, Any]:
        """The metrics' children for a label pair, looked up once (labels() is not free)."""
        pair = INGRESS_REQUESTS.labels(label, outcome), INGRESS_SECONDS.labels(label)
        self._metrics[(label, outcome)] = pair
        return pair

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> tuple[str, str]:
        """Serve the request; the source label and outcome to count."""
        path, method = scope["path"], scope["method"]
        if path.startswith(RECEIPTS_PATH):
            source = self.config.sources.get(path[len(RECEIPTS_PATH) :])
            if source is None:
                await answer(send, 404, b"no such source\n", headers=self._unread(scope))
                return "-", "unknown_source"
            return source.name, await self.receipts.handle(scope, receive, send, source)
        if path == "/v1/correlations" and method == "POST":
            return "-", await self._correlations(scope, receive, send)
        if path == "/healthz" and method == "GET":
            healthy = await self.storage.ping()
            await answer(
                send, 200 if healthy else 503, b"ok\n" if healthy else b"Redis does not answer\n"
            )
            return "-", "health"
        if path == "/metrics" and method == "GET":
            await answer(send, 200, _metrics(), CONTENT_TYPE_LATEST.encode())
            return "-", "metrics"
        await answer(send, 404, b"not found\n", headers=self._unread(scope))
        return "-", "not_found"

    def _unread(self, scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
        """An early answer's headers: a body up to the form cap is passed over, the
        connection kept; a larger one is not waited for."""
        return tuple(unread_body(scope, self.settings.ingress_max_form_bytes))

    async def _correlations(self, scope: Scope, receive: Receive, send: Send) -> str:
        """POST /v1/correlations: one record or a list, with the ingress token; all or none."""
        if not self._authorized(scope):
            await answer(
                send,
                401,
                b"Authorization: Bearer RELAY_INGRESS_TOKEN required\n",
                headers=unread_body(scope, self.settings.ingress_max_bytes),
            )
            return "refused"
        settings = self.settings
        body = await body_or_answer(
            scope, receive, send, settings.ingress_max_bytes, settings.ingress_read_timeout
        )
        if isinstance(body, str):
            return body
        try:
            document: Any = json.loads(body)
        except (ValueError, RecursionError):
            await answer_json(send, 400, {"problems": ["the body is not JSON"]})
            return "invalid"
        items = document if isinstance(document, list) else [document]
        checked, problems = [], []
        for number, item in enumerate(items, start=1):
            try:
                checked.append(check_record(item, self.config))
            except BadCorrelation as exc:
                problems.append(f"record {number}: {exc}")
        if problems:
            await answer_json(send, 400, {"problems": problems})
            return "invalid"
        try:
            released = await self.storage.register(checked)
        except STORE_ERRORS:
            await answer(send, 503, b"cannot store records now; try again\n")
            return "unavailable"
        await answer_json(send, 200, {"stored": len(checked), "released": released})
        return "accepted"

    def _authorized(self, scope: Scope) -> bool:
        token = self.settings.ingress_token
        given = dict(scope["headers"]).get(b"authorization", b"")
        return bool(token) and hmac.compare_digest(given, f"Bearer {token}".encode())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.storage.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _metrics() -> bytes:
    """This process's metrics, or every process's with PROMETHEUS_MULTIPROC_DIR set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def create_app() -> Ingress:
    """The application for uvicorn (`--factory`): settings from the environment, the
    configuration checked (every problem listed, exit 2 when it is bad)."""
    settings = get_settings()
    logs.configure(settings.log_format)
    try:
        config = load_config(settings.config_path, secrets_for=("sources",))
    except ConfigError as exc:
        print(f"relay ingress: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    init_sentry(settings.sentry_dsn, process_secrets(settings, config))
    if not config.sources:
        log.warning("ingress: no [sources.NAME] configured; every callback will be answered 404")
    return Ingress(config, settings)
