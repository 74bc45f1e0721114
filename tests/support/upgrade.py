"""A rolling upgrade from the previous release, as one scenario the lifecycle tests read.

Two workers of the previous release (`tests/support/releases.py`) deliver alone; a worker of
this release joins them on the same Redis, queue, inbox and retry schedule while producers
keep pushing; one old worker is killed (kill -9) with work in hand, the other stopped
(SIGTERM), and this release's worker finishes alone. Along the way: a target that fails some
events a while (parked retries, from before the overlap to the end), one that refuses some
(dead letters, replayed by this release's CLI once it accepts them), correlation records and
receipts through this release's ingress (the previous release has none), and producers'
copies of events delivered before the upgrade. Every message id is then found where it
landed: posted (a 2xx answer at the sandbox, counted per request), a dead letter, or left in
a list.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from tests.support.harness import CONFIG, Relay, event, posted_ids, wait_for
from tests.support.ingress import SOURCES, Ingress, sf_reference
from tests.support.releases import Installed
from tests.support.shared_state import Shared
from worker.dev.callbacks import Message
from worker.dev.processes import stop_group
from worker.dev.sandbox import Fault, Sandbox
from worker.intake.push import push_events
from worker.stores.deadletters import DeadLetterStore

TIMING = {"RELAY_VISIBILITY_TIMEOUT": "15", "RELAY_TASK_BUDGET": "5"}
"""A killed worker's messages come back after 15 s (the default, 60 s, would be most of a run)."""
OLD_CONFIG = (
    CONFIG.replace("max_attempts = 4", "max_attempts = 40")
    .replace("max_age = 120.0", "max_age = 600.0")
    .replace('kind = "salesforce"\n', 'kind = "salesforce"\ntimeout = 3.0\n')
    .replace('kind = "medallia"\n', 'kind = "medallia"\ntimeout = 3.0\n')
)
"""What both releases read (the previous one refuses [sources] tables): retries that outlast
the target's failing spell, timeouts that fit the shorter visibility timeout."""
NEW_CONFIG = OLD_CONFIG + SOURCES
OVERLAP = 16.0  # seconds of pushing while both releases run
SETTLE = 50.0  # seconds the last phase may take (a dead worker's list is taken up after 30 s)
MOVED = re.compile(rb"inbox: (\d+) event\(s\) of stopped bundlers returned to the inbox")


def mid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def ordinary(label: str, n: int) -> list[dict[str, Any]]:
    """Events of every kind that are accepted at once (both targets, several statuses)."""
    kinds = [("md", "delivered"), ("sf", "delivered"), ("md", "failed"), ("sf", "read")]
    return [event(*kinds[i % len(kinds)], mid(label)) for i in range(n)]


@dataclass
class Groups:
    """The scenario's message ids by what was done to their events."""

    before: list[str] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)
    during: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    """Provider message ids of the correlation records (each its own message id too)."""
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    """(target, event_id) of each pushed event's message id."""

    def add(self, group: list[str], events: list[dict[str, Any]]) -> None:
        for e in events:
            group.append(e["message_ids"][0])
            self.keys[e["message_ids"][0]] = (e["target"], e["event_id"])

    def expected(self) -> set[str]:
        return {*self.before, *self.parked, *self.refused, *self.copies, *self.during} | set(
            self.records
        )


@dataclass
class Upgrade:
    """The scenario's processes and what it saw; `run` plays it."""

    relay: Relay
    old: Installed
    sandbox: Sandbox
    groups: Groups = field(default_factory=Groups)
    old_workers: list[Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    ingress: Ingress | None = None
    copies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> Shared:
        return Shared(self.relay.env["REDIS_URL"], self.relay.env["RELAY_KEY_PREFIX"])

    @property
    def old_env(self) -> dict[str, str]:
        path = self.relay.tmp / "old.toml"
        path.write_text(OLD_CONFIG.format(sandbox=self.sandbox.url))
        return {**self.relay.env, "RELAY_CONFIG": str(path)}

    def run(self) -> None:
        began = time.monotonic()
        self.before()
        self.overlap()
        self.after()
        self.seen["scenario_seconds"] = round(time.monotonic() - began, 1)

    def start_old(self, name: str, **env: str) -> Popen[bytes]:
        """A worker of the previous release; waits until it is ready."""
        log = self.relay.tmp / f"{name}.log"
        argv = self.old.worker_argv(self.relay.env["RELAY_QUEUE"], mid(name), "-c", "4")
        process = self.old.start([*argv, "-l", "INFO"], log, {**self.old_env, **env})
        self.relay.workers.append(process)  # stopped at the end whatever happens
        self.old_workers.append(process)
        self.logs.append(log)
        ready = lambda: b" ready." in log.read_bytes() or process.poll() is not None  # noqa: E731
        wait_for(ready, 60, f"{name} (previous release) to start")
        assert process.poll() is None, log.read_text()
        return process

    # the phases ---------------------------------------------------------------------------

    def before(self) -> None:
        """The previous release alone: events pushed with its own CLI, some parked, some
        refused; records and receipts through this release's ingress (a new part, deployed
        first)."""
        self.sandbox.add_fault(Fault(api="any", status=400, match="rej-", times=0))
        self.sandbox.add_fault(
            Fault(api="any", status=503, retry_after="3", match="park-", times=0)
        )
        self.sandbox.add_fault(Fault(api="any", delay=0.05, times=0))
        # The first lingers 1.5 s over each bundle, so that it dies holding some in its list.
        self.start_old("old-lingering", RELAY_LINGER_MS="1500")
        self.start_old("old-stopping")
        self.ingress = Ingress(self.relay)
        g = self.groups
        events = ordinary("before", 30)
        self.copies = ordinary("copy", 5)
        parked = [event("sf", "failed", mid("park")) for _ in range(6)]
        refused = [event("sf", "failed", mid("rej")) for _ in range(6)]
        for group, batch in ((g.before, events), (g.copies, self.copies)):
            g.add(group, batch)
        g.add(g.parked, parked)
        g.add(g.refused, refused)
        lines = "\n".join(map(json.dumps, [*events, *self.copies, *parked, *refused])) + "\n"
        pushed = self.old.run(self.old.cli_argv("push", "-"), self.old_env, stdin=lines)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        g.records += [mid("rec") for _ in range(9)]
        self._register(g.records[:6])
        self._receipts(g.records[:3])
        wait_for(lambda: self._posted(*g.before, *g.copies, *g.records[:3]), 60, "0.1.0 delivering")
        failed = lambda: {m for m in g.parked if self._answered(m, 503)} == set(g.parked)  # noqa: E731
        wait_for(failed, 30, "the parked events' first attempts")

    def overlap(self) -> None:
        """This release joins; producers keep pushing; receipts arrive, some before their
        records; halfway the lingering old worker is killed with work in hand, at the end the
        other one is stopped."""
        self.relay.start_worker("new")
        began = time.monotonic()
        for i in range(int(OVERLAP / 0.4)):
            batch = ordinary("during", 5)
            batch.append(event("sf", "failed", mid("rej" if i % 2 else "park")))
            self.groups.add(self.groups.during, batch)
            push_events(batch)
            if i == 5:
                self._receipts(self.groups.records[3:9])  # three with records, three waiting
            if i == 10:
                self._register(self.groups.records[6:9])
            if "kill" not in self.marks and time.monotonic() - began >= OVERLAP / 2:
                self._kill_when_holding()
            time.sleep(0.4)
        self._kill_when_holding()
        stop_group(self.old_workers[1], timeout=30)
        self.marks["stopped"] = time.time()

    def after(self) -> None:
        """This release alone: producers' copies of events delivered before the upgrade; the
        target recovers and accepts what it refused; the dead letters are replayed."""
        push_events(self.copies)
        self.seen["twins"] = self.state.twin_retries()
        self.sandbox.clear_faults()
        self.seen["old_cli_reads_dead_letters"] = self._old_cli_reads_new_dead_letter()
        wait_for(
            lambda: self.state.quiet(self.relay.env["RELAY_QUEUE"]),
            40,
            "the queue, unacked messages and retries to empty",
        )
        replay = self.relay.cli("dlq", "replay", "--all")
        self.seen["replay"] = (replay.returncode, replay.stdout.strip(), replay.stderr.strip())
        expected = self.groups.expected()
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline and not expected <= set(self.posts()):
            time.sleep(0.5)
        time.sleep(2)  # anything still on its way lands in the counts

    # helpers ------------------------------------------------------------------------------

    def _kill_when_holding(self) -> None:
        """kill -9 the lingering old worker once its in-flight list holds items (up to 5 s)."""
        if "kill" in self.marks:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.state.old_lists(self.old_workers[0].pid):
            push_events(extra := ordinary("during", 3))
            self.groups.add(self.groups.during, extra)
            time.sleep(0.2)
        self.seen["held_at_kill"] = sum(self.state.old_lists(self.old_workers[0].pid).values())
        self.seen["posts_before_kill"] = self.posts()
        os.killpg(self.old_workers[0].pid, signal.SIGKILL)
        self.old_workers[0].wait(timeout=10)
        self.marks["kill"] = time.time()

    def _old_cli_reads_new_dead_letter(self) -> bool:
        """Whether 0.1.0's `relay dlq list` reads a dead letter this release wrote (a line its
        CLI could not queue, purged afterwards)."""
        self.relay.cli("push", "-", stdin="not an event\n")
        listed = self.old.run(self.old.cli_argv("dlq", "list", "--json"), self.old_env)
        for letter in DeadLetterStore().iter(reason="invalid"):
            if letter.event == "not an event":
                self.relay.cli("dlq", "purge", letter.id)
        return listed.returncode == 0

    def old_moves(self) -> int:
        """Items the previous release's recovery says it put back on the inbox."""
        return sum(int(n) for log in self.logs for n in MOVED.findall(log.read_bytes()))

    def _register(self, pmids: list[str]) -> None:
        records = [
            {"source": "smpp", "provider_message_id": p, **sf_reference(p, conversation=True)}
            for p in pmids
        ]
        assert self.ingress is not None
        status, body = self.ingress.correlate(*records)
        assert status == 200, body

    def _receipts(self, pmids: list[str]) -> None:
        assert self.ingress is not None
        for pmid in pmids:
            status, body = self.ingress.post("smpp", Message(pmid, "DELIVRD"))
            assert status == 200, body

    def posts(self) -> Counter[str]:
        return Counter(posted_ids(self.sandbox.requests()))

    def _posted(self, *mids: str) -> bool:
        return set(mids) <= set(self.posts())

    def _answered(self, message_id: str, status: int) -> bool:
        return any(
            r["status"] == status and message_id in str(r["json"]) for r in self.sandbox.requests()
        )
