"""`relay status`: what is queued, waiting and dead, per target, read straight from Redis."""

from __future__ import annotations

import time
import tomllib
from collections import Counter
from typing import Any

from worker.broker import queue_lists
from worker.delivery.settle import UNKNOWN
from worker.intake.inbox import Inbox
from worker.intake.inflight import inflight_lists, lane_keys, lanes
from worker.settings import get_settings
from worker.stores.connection import get_redis
from worker.stores.correlations import Correlations
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetterStore
from worker.stores.retries import RetrySchedule

NEWER = "(newer format)"  # what a newer relay version parked or dead-lettered, by count only


def queue_depth() -> int:
    """Messages waiting in the delivery queue, all priority levels together."""
    client, queue = get_redis(), get_settings().queue
    pipe = client.pipeline(transaction=False)
    for name in queue_lists(queue):
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())


def backlog() -> int:
    """Events no worker has taken yet: the inbox plus the delivery queue's messages."""
    return queue_depth() + Inbox(get_redis()).depth()


def collect_status() -> dict[str, Any]:
    """Queue and inbox depths, retries waiting and dead letters (by target), outcome counts."""
    client = get_redis()
    queue = get_settings().queue
    depth = queue_depth()
    inbox = Inbox(client).depth()
    retries: Counter[str] = Counter()
    for envelope, _ in RetrySchedule(client).iter():
        event = envelope.event if envelope is not None else {"target": NEWER}
        retries[str(event.get("target", "-")) if isinstance(event, dict) else "-"] += 1
    dead: Counter[str] = Counter(str(d.target or "-") for d in DeadLetterStore(client).iter())
    return {
        # Events in the inbox are not yet taken: a backlog there means the lanes lag or
        # no worker runs, which the queue depth alone would hide.
        "queue": {"name": queue, "depth": depth, "inbox": inbox},
        "inflight": _inflight(client),
        "retries_waiting": dict(retries),
        "dead_letters": dict(dead),
        "outcomes": Counters(client).snapshot(),
        # The ingress's receipts, by source: accepted, waiting, ignored, refused, invalid,
        # uncorrelated; and how many wait for their correlation record now.
        "receipts": Counters(client, family="receipts").snapshot(),
        "waiting_for_correlation": Correlations(client).waiting(),
    }


def _inflight(client: Any) -> dict[str, Any]:
    """What workers' lanes hold between taking events from the inbox and settling them."""
    lists = inflight_lists(client)
    now = time.time()
    return {
        "lanes": len(lists),
        "events": sum(entry.items for entry in lists),
        "oldest_seconds": round(max((entry.age(now) for entry in lists), default=0.0), 1),
        "unlisted": _unlisted(client),
    }


def _unlisted(client: Any) -> dict[str, int]:
    """In-flight lists the set of lanes lacks, found by a SCAN (status makes one anyway, for
    counters): a 0.1.0 worker's list never joins the set, and only a worker's start scans for
    such lists, so one whose worker died after every newer worker started stays until a
    worker starts again."""
    listed = set(lanes(client))
    names = [name for name in lanes(client, scan=True) if name not in listed]
    pipe = client.pipeline(transaction=False)
    for name in names:
        items, lease, _ = lane_keys(name)
        pipe.llen(items)
        pipe.exists(lease)
    replies = pipe.execute() if names else []
    sizes = [(int(n), bool(alive)) for n, alive in zip(replies[::2], replies[1::2], strict=True)]
    return {
        "lists": sum(1 for n, _ in sizes if n),
        "events": sum(n for n, _ in sizes),
        "unleased_events": sum(n for n, alive in sizes if not alive),
    }


def configured_targets() -> set[str] | None:
    """The target names RELAY_CONFIG declares, read without its secrets; None when it cannot
    be read."""
    try:
        with open(get_settings().config_path, "rb") as handle:
            tables = tomllib.load(handle).get("targets")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return set(tables) if isinstance(tables, dict) else None


def _by_label(report: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The report with retries and dead letters of targets not configured counted under
    UNKNOWN, as the outcome counters count them: one row per target, not two for one event."""
    known = configured_targets()
    if known is None:
        return report, []
    strangers: set[str] = set()
    folded = dict(report)
    for part in ("retries_waiting", "dead_letters"):
        counts: Counter[str] = Counter()
        for name, n in report[part].items():
            unknown = name not in known and name not in ("-", NEWER)
            strangers |= {name} if unknown else set()
            counts[UNKNOWN if unknown else name] += n
        folded[part] = dict(counts)
    return folded, sorted(strangers)


def render_status(report: dict[str, Any]) -> str:
    """The report as a small table for people."""
    report, strangers = _by_label(report)
    targets = sorted(
        set(report["retries_waiting"]) | set(report["dead_letters"]) | set(report["outcomes"])
    )
    queue = report["queue"]
    inflight = report["inflight"]
    lines = [
        f"queue {queue['name']!r}: {queue['depth']} message(s) waiting, "
        f"inbox: {queue['inbox']} event(s) waiting, lanes hold {inflight['events']} "
        f"event(s) (oldest {inflight['oldest_seconds']:.0f}s)"
    ]
    header = f"{'target':<24}{'retrying':>9}{'dead':>7}  outcomes"
    lines += [header, "-" * len(header)]
    for name in targets:
        outcomes = ", ".join(
            f"{k} {v}" for k, v in sorted(report["outcomes"].get(name, {}).items())
        )
        lines.append(
            f"{name:<24}{report['retries_waiting'].get(name, 0):>9}"
            f"{report['dead_letters'].get(name, 0):>7}  {outcomes or '-'}"
        )
    if not targets:
        lines.append("(nothing yet)")
    if strangers:
        lines.append(f"{UNKNOWN}: events for targets not configured: {', '.join(strangers)}")
    return "\n".join(lines + _render_unlisted(inflight) + _render_receipts(report))


def _render_unlisted(inflight: dict[str, Any]) -> list[str]:
    unlisted = inflight.get("unlisted") or {}
    if not unlisted.get("events"):
        return []
    return [
        f"in-flight lists not in the set of lanes (an earlier release's): "
        f"{unlisted['events']} event(s) in {unlisted['lists']} list(s), "
        f"{unlisted['unleased_events']} of them in lists with no lease (a worker's start "
        "puts those back on the inbox: restart one worker)"
    ]


def _render_receipts(report: dict[str, Any]) -> list[str]:
    """The ingress's lines: receipts by source and outcome, and what waits for a record."""
    receipts = report.get("receipts") or {}
    if not receipts and not report.get("waiting_for_correlation"):
        return []
    lines = [f"receipts waiting for a correlation record: {report['waiting_for_correlation']}"]
    header = f"{'source':<24}receipts"
    lines += [header, "-" * len(header)]
    for name, counts in sorted(receipts.items()):
        lines.append(f"{name:<24}" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return lines
