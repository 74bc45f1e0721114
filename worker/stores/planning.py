"""Where each receipt of a callback goes: an event by its record or its echoed reference, a wait
for its record, or a dead letter of its source's own.

A registered record wins over a reference; a reference counts only for the source's own
targets and, under a `reference_key`, only signed (`tasks.upstream.references`); a receipt
dated more than 5 minutes after it was received is never posted. The ingress plans without
reading any record; when some receipt's outcome depends on its record (`Plan.lookups`), it
reads those and plans again. The receipts it routes by reference without reading their
records are written only if no record exists (`Plan.unchecked`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tasks.events import MAX_AHEAD_MS, too_far_ahead
from tasks.upstream.correlation import correlation_of
from tasks.upstream.events import event_id, make_event
from tasks.upstream.receipts import Receipt
from tasks.upstream.references import Verdict, judge
from worker.sources import Source
from worker.stores.connection import text_of
from worker.stores.correlations import compact, record_key, waiting_item
from worker.stores.deadletters import DeadLetter, Reason
from worker.stores.take import Plan


def _verdict(source: Source, receipt: Receipt) -> Verdict:
    return judge(receipt.reference, source.targets, source.target, source.reference_key)


def _from_the_future(receipt: Receipt, received_ms: int) -> bool:
    return receipt.occurred_ms is not None and too_far_ahead(receipt.occurred_ms, received_ms)


def plan(
    source: Source, receipts: list[Receipt], records: Mapping[str, Any] | None, received_ms: int
) -> Plan:
    """What the receipts come to. `records` maps the provider message ids that were looked up
    to their stored record (JSON text, or None when there is none); with None (nothing looked
    up yet) the plan's `lookups` name the records to read, if any, before planning again.
    `TooManyIds` (the whole callback refused) for a reference naming too many."""
    result = Plan(cost=max(1, len(receipts)))
    known = records or {}
    for receipt in receipts:
        pmid = receipt.provider_message_id
        if receipt.status is None:
            result.ignored += 1
        elif _from_the_future(receipt, received_ms):
            result.refused.append(_future(source, receipt, received_ms))
        elif stored := known.get(pmid):
            correlation = correlation_of(json.loads(text_of(stored)))
            result.events.append(
                compact(make_event(source.name, receipt, correlation, received_ms))
            )
        elif (verdict := _verdict(source, receipt)).correlation is not None:
            event = make_event(source.name, receipt, verdict.correlation, received_ms)
            result.events.append(compact(event))
            if pmid not in known:
                result.unchecked.append(record_key(source.name, pmid))
        elif records is None:
            result.lookups.append(pmid)
        elif verdict.forbidden:
            result.refused.append(_forbidden(source, receipt, received_ms, verdict.forbidden))
        else:
            result.waiting.append(waiting_item(source, receipt, received_ms))
    return result


def _forbidden(source: Source, receipt: Receipt, received_ms: int, why: str) -> DeadLetter:
    why = (
        f"{why}; nothing was posted. If the message is the source's, register a record for "
        f"provider message {receipt.provider_message_id!r} (relay correlate) and replay this "
        "dead letter"
    )
    return letter(source, receipt, received_ms, "forbidden", why)


def letter(
    source: Source, receipt: Receipt, received_ms: int, reason: Reason, why: str
) -> DeadLetter:
    """A dead letter of the source's own holding the receipt as it would have waited, so that
    `relay dlq replay` puts it back through correlation (its record, if one is registered)."""
    return DeadLetter(
        reason=reason,
        error=f"source {source.name}: {why}",
        event=waiting_item(source, receipt, received_ms),
        event_id=event_id(source.name, receipt),
        target=source.target,
    )


def _future(source: Source, receipt: Receipt, received_ms: int) -> DeadLetter:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")

    why = (
        f"the provider dated this {receipt.provider_status} status {iso(receipt.occurred_ms or 0)}"
        f", more than {MAX_AHEAD_MS // 60_000} minutes after it was received "
        f"({iso(received_ms)}): a status from the future would make every later status of the "
        "message look old, so it is not posted (a gateway that reports local time instead of "
        "UTC does this)"
    )
    return letter(source, receipt, received_ms, "invalid", why)
