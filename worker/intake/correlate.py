"""Correlation records and signed references from the sending side: the Python API,
`relay correlate`, `relay reference` and POST /v1/correlations all check them here; records
are then stored (releasing the receipts that wait for them)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.upstream.correlation import BadCorrelation, Correlation, correlation_of, record_of
from tasks.upstream.references import sign_reference
from worker.cells.records import register_in_cells
from worker.config import RelayConfig, load_config
from worker.settings import get_settings

Checked = tuple[str, str, Correlation, float]
"""A record ready to store: source, provider message id, resolved correlation, ttl seconds."""


@dataclass
class CorrelateReport:
    """How a registration went: records stored, receipts released, problems of the rest."""

    stored: int = 0
    released: int = 0
    problems: list[str] = field(default_factory=list)


def check_record(data: Any, config: RelayConfig) -> Checked:
    """A record checked against the configuration; `BadCorrelation` saying what is wrong."""
    record = record_of(data)
    source = config.sources.get(record.source)
    if source is None:
        known = ", ".join(sorted(config.sources)) or "none"
        raise BadCorrelation(f"unknown source {record.source!r} (configured sources: {known})")
    correlation = record.correlation.with_target(source.target)
    if not correlation.target:
        raise BadCorrelation(f"no 'target', and source {source.name!r} has no default target")
    if correlation.target not in config.targets:
        raise BadCorrelation(f"unknown target {correlation.target!r}")
    return record.source, record.provider_message_id, correlation, source.correlation_ttl


def register_correlations(
    records: Iterable[dict[str, Any]], config: RelayConfig | None = None
) -> CorrelateReport:
    """Store correlation records (dicts as `relay correlate` reads them); the bad ones are
    reported, the good ones stored and the receipts waiting for them released."""
    config = config or load_config(get_settings().config_path, secrets_for=())
    report = CorrelateReport()
    good: list[Checked] = []
    for number, data in enumerate(records, start=1):
        try:
            good.append(check_record(data, config))
        except BadCorrelation as exc:
            report.problems.append(f"record {number}: {exc}")
    if good:
        report.released = register_in_cells(good)
    report.stored = len(good)
    return report


def read_lines(lines: Iterable[str]) -> Iterable[Any]:
    """JSON lines as records (a line that is not JSON comes through as its text, refused by
    the check with its number)."""
    for line in lines:
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            yield line.strip()[:80]


def signed_reference(
    reference: Mapping[str, Any] | str,
    source: str,
    config: RelayConfig | None = None,
    key: str | bytes | None = None,
) -> str:
    """The echoed reference the sending side hands the provider for a message of `source`:
    compact JSON, a dot and its HMAC-SHA256 under the source's `reference_key` (or `key`).
    `BadCorrelation` when it names a target that is not one of the source's own, or when
    there is no key. E.g. `signed_reference({"message_ids": ["0Mw1"], "channel": "c"},
    "twilio-us")`; without the relay's configuration, the pure
    `tasks.upstream.references.sign_reference(reference, key)`."""
    config = config or load_config(get_settings().config_path)
    found = config.sources.get(source)
    if found is None:
        raise BadCorrelation(f"unknown source {source!r}")
    try:
        data = json.loads(reference) if isinstance(reference, str) else reference
    except ValueError:
        raise BadCorrelation("a reference must be a JSON object") from None
    target = correlation_of(data).with_target(found.target).target
    if target not in found.targets:
        mine = ", ".join(sorted(found.targets)) or "none: it routes by records alone"
        raise BadCorrelation(f"target {target!r} is not one of source {source!r}'s ({mine})")
    secret = key if key is not None else found.reference_key
    if not secret:
        raise BadCorrelation(f"source {source!r} has no reference_key (and no key was given)")
    return sign_reference(reference, secret)
