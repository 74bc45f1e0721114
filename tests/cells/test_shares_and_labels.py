"""What a cell is given of what spans cells: a source's quotas shared out at the ingress, a
callback's plans merged into one answer, and the state gauges labelled by cell."""

from __future__ import annotations

import pytest
from prometheus_client.core import GaugeMetricFamily

from worker.cells.labels import with_cell
from worker.ingress.cells import merged, shared
from worker.ops.gauges import StateCollector
from worker.settings import get_settings
from worker.sources import Source
from worker.stores.take import Plan

SOURCE = Source("tw", "twilio", {}, receipts_per_second=90.0, max_waiting=1000, max_receipts=1)


@pytest.mark.parametrize(
    ("cells", "rate", "waiting"),
    [(1, 90.0, 1000), (2, 45.0, 500), (3, 30.0, 334), (4000, 0.0225, 1)],
)
def test_a_sources_quotas_are_divided_among_the_cells(
    cells: int, rate: float, waiting: int
) -> None:
    share = shared(SOURCE, cells)
    assert (share.receipts_per_second, share.max_waiting) == (pytest.approx(rate), waiting)
    assert share.name == SOURCE.name and share.burst >= share.max_receipts


def test_a_callbacks_plans_are_answered_as_one() -> None:
    one = Plan(cost=2, events=["a"], waiting=[{"id": "w"}], ignored=1)
    two = Plan(cost=3, events=["b", "c"], ignored=2)
    whole = merged([one, two])
    assert (whole.cost, whole.events, whole.waiting, whole.ignored) == (
        5,
        ["a", "b", "c"],
        [{"id": "w"}],
        3,
    )
    assert merged([]).cost == 1


def test_with_cell_labels_every_sample_and_none_leaves_them_as_they_were() -> None:
    family = GaugeMetricFamily("relay_x", "x", labels=["source"])
    family.add_metric(["tw"], 3)
    (labelled,) = with_cell([family], 2)
    assert [s.labels for s in labelled.samples] == [{"source": "tw", "cell": "2"}]
    plain = GaugeMetricFamily("relay_y", "y", value=1)
    (same,) = with_cell([plain], None)
    assert [s.labels for s in same.samples] == [{}]


def test_a_cells_workers_report_their_cells_state_under_its_label(
    prefix: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = redis_url.rsplit("/", 1)[0]
    monkeypatch.setenv("RELAY_CELLS", f"{base}/9,{redis_url}")
    get_settings.cache_clear()
    families = list(StateCollector(sources=["tw"]).collect())
    assert families and all(s.labels.get("cell") == "1" for f in families for s in f.samples)
    monkeypatch.delenv("RELAY_CELLS")
    get_settings.cache_clear()
    alone = list(StateCollector(sources=["tw"]).collect())
    assert all("cell" not in s.labels for f in alone for s in f.samples)
