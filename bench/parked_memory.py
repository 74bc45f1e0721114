"""What a parked retry costs Redis (the goal: under 1 KB per parked event), by key family.

`python -m bench.parked_memory [--events 100000]` starts a throwaway Redis and builds, with the
relay's own classes, the state a real 503 + Retry-After leaves behind for each event: the
idempotency claims, in one hash per message id (`worker.stores.ledger.EventLedger.admit`;
the newest-status mark joins it only with a delivery) and
the envelope parked in the retry schedule (`RetrySchedule.park`) after one recorded attempt.
Each family is written in its own phase, so its `used_memory` delta is its cost, TTL entries
and hash-table buckets included (a table doubles in whichever phase crosses a power of two, so
small runs are lumpy); `MEMORY USAGE` on samples is printed beside it (it leaves out the TTL
entry and the buckets). No worker, target or Celery is involved; `BENCH_ARGS="--parked 100000"
make bench` measures the same with real workers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import redis

from bench.events import make_events
from tasks.envelope import Envelope
from worker.dev.local_redis import LocalRedis
from worker.stores.ledger import Done, Entry

WARMUP = 1000  # past every small encoding (a zset turns into a skiplist at 128 members)
RETRY_AFTER = 3600.0  # what the bench's parked target answers
HOLD = 86400.0 + 3600  # the pipeline's claim hold for the default retry policy (max_age + 1 h)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.parked_memory", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000, help="keys per MEMORY USAGE sample")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    return parser.parse_args()


def parked_envelope(event: dict[str, Any], rng: random.Random) -> Envelope:
    """The envelope a first attempt answered 503 leaves parked (one history entry)."""
    envelope = Envelope(event, attempts=1)
    if event["target"] == "md":
        endpoint = "messages"
    elif event["status"] in ("failed", "undelivered"):
        endpoint = "interactions"
    else:
        endpoint = "acknowledgement"
    duration = round(rng.uniform(0.002, 0.05), 4)
    envelope.record(
        attempt=1, endpoint=endpoint, status=503, error=None, duration=duration, outcome="retry"
    )
    return envelope


class State:
    """The three key families the relay keeps per parked event, written with its own classes."""

    def __init__(self, client: redis.Redis) -> None:
        from tasks.schemas import load_event
        from worker.stores.ledger import EventLedger
        from worker.stores.retries import RetrySchedule

        self.load_event = load_event
        self.ledger = EventLedger(client)
        self.schedule = RetrySchedule(client)

    def claim(self, envelope: Envelope) -> None:
        """The idempotency claims, as admission writes them (its status-order check reads),
        and the in-flight reservation's release, as parking does it."""
        event = self.load_event(envelope.event)
        ids = event.message_ids
        entry = Entry(
            event.target, event.event_id, envelope.id, HOLD, ids, event.occurred_ms, event.status
        )
        [admitted] = self.ledger.admit([entry])
        assert admitted.fresh == list(ids)
        # parking releases the in-flight reservation admission took, as settling does
        self.ledger.mark(
            [Done(event.target, event.event_id, ids, owner=envelope.id, mode="release")]
        )

    def park(self, envelope: Envelope) -> None:
        self.schedule.park(envelope, time.time() + RETRY_AFTER)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def memory_usage(client: redis.Redis, name: str, samples: int = 5) -> int:
    return int(client.memory_usage(name, samples=samples) or 0)


def sampled_usage(client: redis.Redis, pattern: str, samples: int) -> tuple[int, float]:
    """How many keys match `pattern`, and MEMORY USAGE averaged over up to `samples` of them."""
    names = list(client.scan_iter(match=pattern, count=5000))
    picked = random.Random(1).sample(names, min(samples, len(names)))
    mean = statistics.fmean(memory_usage(client, n) for n in picked) if picked else 0.0
    return len(names), mean


def phase(
    client: redis.Redis, step: Callable[[Envelope], None], envelopes: Iterable[Envelope]
) -> int:
    before = used_memory(client)
    for envelope in envelopes:
        step(envelope)
    return used_memory(client) - before


def member_sizes(envelopes: list[Envelope]) -> dict[str, float]:
    """Mean bytes of a retry-schedule member, the event inside it, and zlib of the member."""
    from worker.stores.retries import _member

    members = [_member(e).encode() for e in envelopes]
    events = [json.dumps(e.event, ensure_ascii=False, separators=(",", ":")) for e in envelopes]
    return {
        "member_bytes": round(statistics.fmean(len(m) for m in members), 1),
        "event_json_bytes": round(statistics.fmean(len(e.encode()) for e in events), 1),
        "member_zlib_bytes": round(statistics.fmean(len(zlib.compress(m, 9)) for m in members), 1),
    }


def _usage_per_event(
    client: redis.Redis, count: int, message_ids: int, samples: int
) -> dict[str, float]:
    """MEMORY USAGE of each kind of key, sampled, per parked event."""
    prefix = os.environ["RELAY_KEY_PREFIX"]
    claims, claim_usage = sampled_usage(client, f"{prefix}:msg:*", samples)
    schedule_usage = memory_usage(client, f"{prefix}:retries", samples=0)
    return {
        "event claims": round(claim_usage * claims / count, 1),
        "retry schedule": round(schedule_usage / (count + WARMUP), 1),
    }


def measure(url: str, count: int, samples: int) -> dict[str, Any]:
    client = redis.Redis.from_url(url, decode_responses=True)
    rng = random.Random(11)
    state = State(client)
    warmup = [parked_envelope(e, rng) for e in make_events(WARMUP, "warm", 3, postable_only=True)]
    for envelope in warmup:
        state.claim(envelope)
        state.park(envelope)
    events = make_events(count, "parked", seed=7, postable_only=True)
    envelopes = [parked_envelope(e, rng) for e in events]
    message_ids = sum(len(e["message_ids"]) for e in events)

    started = time.monotonic()
    total_before = used_memory(client)
    deltas = {
        "event claims": phase(client, state.claim, envelopes),
        "retry schedule": phase(client, state.park, envelopes),
    }
    total = used_memory(client) - total_before
    elapsed = time.monotonic() - started

    per_event = {name: round(delta / count, 1) for name, delta in deltas.items()}
    usage = _usage_per_event(client, count, message_ids, samples)
    return {
        "parked_events": count,
        "message_ids": message_ids,
        "redis_bytes_per_parked_event": round(total / count, 1),
        "used_memory_delta_per_event": per_event,
        "memory_usage_per_event": usage,
        "status_keys_per_event": round(message_ids / count, 3),
        **member_sizes(envelopes[:samples]),
        "build_seconds": round(elapsed, 1),
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['parked_events']:,} parked events "
        f"({figures['status_keys_per_event']} message ids each), built in "
        f"{figures['build_seconds']} s",
        f"Redis used_memory per parked event: {figures['redis_bytes_per_parked_event']} bytes "
        "(goal: under 1024)",
        f"{'key family':<16}{'used_memory delta':>20}{'MEMORY USAGE':>16}",
    ]
    for name, delta in figures["used_memory_delta_per_event"].items():
        lines.append(f"{name:<16}{delta:>20}{figures['memory_usage_per_event'][name]:>16}")
    lines.append(
        f"retry member: {figures['member_bytes']} bytes of JSON, of which the event "
        f"{figures['event_json_bytes']}; zlib -9 of the member: {figures['member_zlib_bytes']}"
    )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    server = LocalRedis().start()
    try:
        # Before anything reads the settings: the relay's keys go to this Redis, this prefix.
        os.environ["REDIS_URL"] = server.url
        os.environ.setdefault("RELAY_KEY_PREFIX", "relay")
        figures = measure(server.url, args.events, args.samples)
    finally:
        server.stop()
    print(json.dumps(figures, indent=2) if args.json else report(figures))


if __name__ == "__main__":
    main()
