"""Metrics past one Redis: the state gauges of each cell's workers carry `cell` (its index in
RELAY_CELLS), so that a fleet of cells can be told apart and summed; with one cell, nothing is
added and the metrics are as they always were."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

M = TypeVar("M", bound=Metric)


def with_cell(families: Iterable[M], cell: int | None) -> Iterator[M]:
    """Each family's samples labelled with `cell` (unchanged for None: one cell)."""
    for family in families:
        if cell is not None:
            family.samples = [
                Sample(s.name, {**s.labels, "cell": str(cell)}, s.value, s.timestamp, s.exemplar)
                for s in family.samples
            ]
        yield family
