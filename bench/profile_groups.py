"""Where a worker's CPU goes, by part of the hot path: reads py-spy's folded stacks
(`bench-results/profile-MODE.txt`, written by `python -m bench.profile`) and files each sample
under the first part of the pipeline found on its stack, innermost first
(`python -m bench.profile_groups [FILE]`)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (part, what marks a frame as that part), tried innermost frame first, first match wins.
PARTS = [
    ("marshmallow (the schema)", ("marshmallow/", "tasks/schemas.py")),
    ("Redis client", ("redis/", "hiredis")),
    ("logging", ("logging/",)),
    (
        "HTTP: libcurl loop and transport",
        ("worker/delivery/curl.py", "worker/delivery/transport.py", "selectors.py"),
    ),
    ("answer book and breaker", ("worker/delivery/answers.py", "worker/stores/breaker.py")),
    (
        "classification and metrics",
        ("tasks/classify.py", "prometheus_client/", "worker/observe/metrics.py"),
    ),
    ("translators and coalescing", ("tasks/targets/", "tasks/outbound.py")),
    ("admission", ("worker/delivery/admission.py", "worker/stores/ledger.py")),
    ("settling", ("worker/delivery/settle.py", "worker/delivery/settlement.py", "worker/stores/")),
    (
        "sending (requests and answers per bundle)",
        ("worker/delivery/sending.py", "worker/delivery/exchange.py", "worker/delivery/auth.py"),
    ),
    ("feeder and intake", ("worker/intake/",)),
    (
        "pipeline and runtime",
        ("worker/delivery/pipeline.py", "worker/delivery/runtime.py", "worker/bootsteps.py"),
    ),
]


def groups(raw: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")[::-1]
        part = next(
            (name for frame in frames for name, marks in PARTS if any(m in frame for m in marks)),
            "other (threads, Celery, the interpreter)",
        )
        found[part] += int(count)
    return found


def main() -> None:
    raw = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results/profile-throughput.txt")
    found = groups(raw)
    total = sum(found.values())
    print(f"| part | share of the worker's CPU ({total} samples) |\n|---|---|")
    for part, n in found.most_common():
        print(f"| {part} | {n / total:.0%} |")


if __name__ == "__main__":
    main()
