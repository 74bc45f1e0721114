"""A worker killed with events in flight and retries parked: another one finishes the job."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import CONFIG, Relay, event, posted_ids, wait_for
from worker.dev.sandbox import Fault, Sandbox
from worker.settings import get_settings

EVENTS = 300


@pytest.fixture
def relay(
    tmp_path: Path, redis_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Relay]:
    """Enough attempts that no event can run out of them: the target's 20 refusals of "m-park"
    requests fall on whichever of them comes first (coalesced first attempts, then each alone),
    so one event may meet several in a row."""
    instance = Relay(
        tmp_path,
        redis_url,
        sandbox.url,
        monkeypatch,
        CONFIG.replace("max_attempts = 4", "max_attempts = 30"),
    )
    try:
        yield instance
    finally:
        instance.stop_all()
        get_settings.cache_clear()


def _kind(i: int) -> str:
    """Every fifteenth event is one the target refuses for a while ("park"); the rest "go"."""
    return "park" if i % 15 == 0 else "go"


def _under_way(relay: Relay) -> bool:
    """Some events delivered and some parked: the worker has work in every state."""
    return relay.counts("md").get("delivered", 0) >= 40 and relay.retries_waiting() > 0


def _wait_all_posted(relay: Relay, sandbox: Sandbox, wanted: set[str]) -> None:
    """Wait until every message id in `wanted` was posted; else say where the missing are."""
    try:
        wait_for(lambda: wanted <= set(posted_ids(sandbox.requests())), 150, "every event")
    except AssertionError as exc:  # say where the missing ones are, for whoever reads CI
        missing = sorted(wanted - set(posted_ids(sandbox.requests())))
        status = relay.cli("status", "--json").stdout
        logs = "".join(p.read_text()[-3000:] for p in sorted(relay.tmp.glob("rescuer-*.log")))
        raise AssertionError(
            f"{exc}: {len(missing)} missing, e.g. {missing[:5]}; status {status}; "
            f"rescuer log tail:\n{logs}"
        ) from None


@pytest.mark.timeout(300)
def test_sigkill_loses_nothing_and_work_returns_within_30_seconds(
    relay: Relay, sandbox: Sandbox, figures
) -> None:
    # given a slow target (so events are in flight) and a few events parked for 5 s
    sandbox.add_fault(Fault(api="medallia", status=503, retry_after="5", times=20, match="m-park"))
    sandbox.add_fault(Fault(api="medallia", delay=0.05, times=0))
    events = [event("md", "delivered", f"m-{_kind(i)}-{i}") for i in range(EVENTS)]
    first = relay.start_worker("doomed")
    relay.push(*events)
    wait_for(lambda: _under_way(relay), 60, "work under way")

    # when the worker's whole process group is SIGKILLed mid-flight
    relay.kill_worker(first)
    killed_at = time.monotonic()
    delivered_before = relay.counts("md").get("delivered", 0)
    relay.start_worker("rescuer")  # default visibility timeout and restore sweep

    # then every event is delivered, without an operator, within 30 s (a worker started after
    # the kill: the lanes and unacked retries of the dead one come back within 15 s)
    wanted = {m for e in events for m in e["message_ids"]}
    _wait_all_posted(relay, sandbox, wanted)
    recovered = time.monotonic() - killed_at
    posts = Counter(posted_ids(sandbox.requests()))
    duplicates = sum(n - 1 for n in posts.values())
    figures(
        pushed=EVENTS,
        delivered_before_kill=delivered_before,
        lost=len(wanted - set(posts)),
        duplicate_posts=duplicates,
        recovery_seconds=round(recovered, 1),
        dead_letters=len(relay.dead_letters()),
    )
    assert recovered < 30
    assert relay.dead_letters() == []
    # Only what the dead worker had in hand can be posted twice: one bundle per thread (4), of
    # at most RELAY_BATCH (200) events, whose requests go out side by side. Answers read
    # earlier were recorded within 20 ms (the answer book), so they are not.
    assert duplicates <= 4 * 200
