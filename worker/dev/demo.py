"""The part of `relay dev` that shows the relay at work: sample events and providers' signed
callbacks, what became of each, and what the look-alike APIs accepted."""

from __future__ import annotations

import time
from subprocess import Popen
from typing import Any

from worker.dev.receipts import DEV_SECRETS, play_samples
from worker.dev.samples import sample_events

SETTLE_TIMEOUT = 60.0


def demo(sandbox: Any, worker: Popen[bytes], ingress_url: str | None) -> bool:
    """Push the samples, play the callbacks, report; True when everything settled."""
    from worker.intake.push import push_events
    from worker.ops.status import collect_status, render_status

    _add_showcase_faults(sandbox)
    events = sample_events()
    started = time.monotonic()
    print(f"relay dev: pushing {len(events)} sample events", flush=True)
    push_events(events)
    receipts = 0
    if ingress_url:
        print("relay dev: sending providers' signed callbacks to the ingress", flush=True)
        receipts = play_samples(ingress_url, DEV_SECRETS)
    settled = _wait_settled(len(events) + receipts, worker)
    print(
        f"relay dev: settled in {time.monotonic() - started:.1f}s"
        if settled
        else "relay dev: not everything settled within a minute; see the worker log"
    )
    accepted = [r for r in sandbox.requests() if r["valid"] and 200 <= r["status"] < 300]
    by_api: dict[str, int] = {}
    for request in accepted:
        by_api[request["api"]] = by_api.get(request["api"], 0) + 1
    print(
        "relay dev: requests accepted by the look-alike APIs: "
        + ", ".join(f"{api} {n}" for api, n in sorted(by_api.items()))
    )
    print(render_status(collect_status()), flush=True)
    return settled


def _add_showcase_faults(sandbox: Any) -> None:
    """Show a retry and a rejection, not only the happy path."""
    from worker.dev.sandbox.faults import Fault

    sandbox.add_fault(Fault(api="any", status=503, times=2, retry_after="1", match="msg-retry"))
    sandbox.add_fault(Fault(api="any", status=400, times=0, match="msg-reject"))


def _wait_settled(expected: int, worker: Popen[bytes]) -> bool:
    from worker.ops.status import collect_status
    from worker.stores.counters import settled_events

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline and worker.poll() is None:
        report = collect_status()
        done = settled_events(report["outcomes"])
        queue = report["queue"]
        waiting = report["retries_waiting"] or queue["depth"] or queue["inbox"]
        if done >= expected and not waiting:
            return True
        time.sleep(0.5)
    return False
