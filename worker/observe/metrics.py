"""Prometheus metrics: outcomes, request latency, attempts per delivery, and state gauges.

Each worker serves them on RELAY_METRICS_PORT (default 9808; 0 turns it off). The default pool
is threads (one process), so plain in-process metrics are right; for a prefork pool set
PROMETHEUS_MULTIPROC_DIR and the server aggregates every child's files.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger("relay.metrics")

DELIVERIES = Counter(
    "relay_deliveries",
    "Events settled or parked, by target and outcome (delivered, skipped, duplicate, retried, "
    "dead:invalid, dead:unroutable, dead:rejected, dead:exhausted).",
    ["target", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "relay_request_duration_seconds",
    "Time from sending a request to a target until its answer was read.",
    ["target", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ATTEMPTS = Histogram(
    "relay_attempts_per_delivered_event",
    "Attempts an event needed until it was delivered.",
    ["target"],
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30),
)

INGRESS_REQUESTS = Counter(
    "relay_ingress_requests",
    "Requests to the ingress by source and outcome (accepted, ignored, refused, invalid, "
    "too_large, unknown_source, unavailable, handshake, not_allowed; refused at the edge: "
    "malformed, busy, read_timeout, headers_too_large, source '-' before a source is known; "
    "refused whole for what the source may send: too_many_receipts, too_many_ids, quota_rate, "
    "quota_waiting).",
    ["source", "outcome"],
)
INGRESS_RECEIPTS = Counter(
    "relay_ingress_receipts",
    "Receipts the ingress took, by source and outcome (accepted, waiting, ignored; kept as "
    "the source's own dead letters: forbidden, invalid when dated in the future).",
    ["source", "outcome"],
)
INGRESS_SECONDS = Histogram(
    "relay_ingress_request_duration_seconds",
    "Time the ingress took to answer a provider's callback.",
    ["source"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)


def count_outcome(target: str | None, outcome: str, n: int = 1) -> None:
    DELIVERIES.labels(target or "-", outcome).inc(n)


def observe_request(target: str, endpoint: str, seconds: float) -> None:
    REQUEST_SECONDS.labels(target, endpoint).observe(seconds)


def observe_attempts(target: str, attempts: int) -> None:
    ATTEMPTS.labels(target).observe(attempts)


def start_metrics_server(port: int, *collectors: Collector) -> None:
    """Serve /metrics on `port` (all interfaces) with `collectors` besides the relay's own
    metrics, or nothing when port is 0."""
    if port <= 0:
        return
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    for collector in collectors:
        registry.register(collector)
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:  # a busy port must not stop deliveries
        log.warning("metrics: cannot listen on port %d: %s", port, exc)
        return
    log.info("metrics on http://0.0.0.0:%d/metrics", port)
