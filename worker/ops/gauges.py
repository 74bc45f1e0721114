"""Prometheus gauges read from Redis at scrape time: inbox, queue, retries waiting, dead letters."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from worker.cells.cells import get_cells
from worker.cells.labels import with_cell
from worker.config import ConfigError, load_config
from worker.intake.inbox import Inbox
from worker.ops.status import queue_depth
from worker.settings import get_settings
from worker.stores.correlations import Correlations
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetterStore
from worker.stores.retries import RetrySchedule

log = logging.getLogger("relay.metrics")

_GAUGES = (
    ("relay_inbox_depth", "Events pushed and not yet taken into a worker's lane."),
    ("relay_queue_depth", "Messages waiting in the delivery queue."),
    ("relay_retries_waiting", "Events parked in the retry schedule."),
    ("relay_dead_letters", "Events in the dead-letter store."),
    ("relay_receipts_waiting", "Receipts waiting for their correlation record."),
)


class StateCollector(Collector):
    """The relay's shared state as gauges, so any worker's /metrics shows the whole fleet's.
    `sources`: the configured sources, whose receipt counts are read by name (a SCAN for them
    on every scrape would read the whole keyspace)."""

    def __init__(self, sources: Sequence[str] | None = None) -> None:
        self.sources = None if sources is None else list(sources)

    def _source_names(self) -> list[str]:
        """The given sources, else those of RELAY_CONFIG (read once; none when it cannot be
        read: the worker's start-up check has said why)."""
        if self.sources is None:
            try:
                self.sources = sorted(
                    load_config(get_settings().config_path, secrets_for=()).sources
                )
            except ConfigError:
                self.sources = []
        return self.sources

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        cells = get_cells()
        yield from with_cell(self._collect(), cells.mine if cells.count > 1 else None)

    def _collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            values = (
                Inbox().depth(),
                queue_depth(),
                RetrySchedule().count(),
                DeadLetterStore().count(),
                Correlations().waiting(),
            )
            receipts = Counters(family="receipts").snapshot(self._source_names())
            waiting = Correlations().waiting_by_source(self._source_names())
            dead = DeadLetterStore().counts()
        except Exception as exc:  # a scrape must not fail because Redis blinked
            log.warning("metrics: cannot read Redis state: %s", exc)
            return
        for (name, doc), value in zip(_GAUGES, values, strict=True):
            yield GaugeMetricFamily(name, doc, value=value)
        family = CounterMetricFamily(
            "relay_receipts",
            "Receipts the ingresses took, fleet-wide, by source and outcome (accepted, waiting, "
            "ignored, refused, invalid, uncorrelated, forbidden).",
            labels=["source", "outcome"],
        )
        for source, counts in sorted(receipts.items()):
            for outcome, n in sorted(counts.items()):
                family.add_metric([source, outcome], n)
        yield family
        yield from _per_source(waiting, {s: n for s, n in dead.items() if s is not None})


def _per_source(waiting: dict[str, int], dead: dict[str, int]) -> Iterator[GaugeMetricFamily]:
    """Each source's use of its own bounds (max_waiting, max_dead_letters)."""
    for name, doc, values in (
        ("relay_source_receipts_waiting", "Receipts waiting for a record, by source.", waiting),
        ("relay_source_dead_letters", "Dead letters in a source's own store.", dead),
    ):
        family = GaugeMetricFamily(name, doc, labels=["source"])
        for source, n in sorted(values.items()):
            family.add_metric([source], n)
        yield family
