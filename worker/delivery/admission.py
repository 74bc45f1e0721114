"""Admission: translate each routed event, then claim its event_id and check the status order
of its message ids, for a whole bundle in one round trip. What is left to send is a `Job`.

Copies of an event already claimed are duplicates, statuses a target has no use for are
skipped, and ones a newer status has overtaken are stale: each is settled here, unsent. Ids
held back while another status of their message is in flight (or goes in this bundle) are
parked briefly, unsent, and judged again when they come back.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

from tasks.envelope import Envelope
from tasks.events import Event
from tasks.outbound import NotDeliverable, OutboundRequest, Skip
from tasks.targets import TARGET_KINDS
from worker.config import Target
from worker.delivery.sending import Job
from worker.delivery.settle import BundleProgress, Settler
from worker.delivery.settlement import Settlement
from worker.stores.ledger import Admitted, Done, Entry, EventLedger

Routed = tuple[Envelope, Event, Target]
Plan = list[OutboundRequest] | Skip
# A claim outlives the event's last possible retry by this much.
CLAIM_MARGIN = 3600.0
NEWER_PAUSE = 30.0  # seconds an event whose claims a newer relay wrote is put off
HOLD = 1.0
"""Seconds (plus up to as much again, spread) a status held back behind another status of
its message waits before it is judged again: about what the one in flight takes to be
answered and settled."""


def translate(event: Event, target: Target) -> Plan:
    """The requests that deliver `event` to `target` (pure), or why it is skipped."""
    return TARGET_KINDS[target.kind].translate(event, target.options)


class Admitter:
    """Turns routed events into jobs; settles on the spot those that need no request."""

    def __init__(self, ledger: EventLedger, settler: Settler) -> None:
        self.ledger = ledger
        self.settler = settler

    def admit(self, routed: dict[int, Routed], progress: BundleProgress) -> dict[int, Job]:
        """The jobs to send, by position in the bundle."""
        plans = self._translate_all(routed, progress)
        answers = self.ledger.admit([_entry(routed[i], plans[i]) for i in plans])
        jobs: dict[int, Job] = {}
        for i, answer in zip(plans, answers, strict=True):
            if answer.held:
                progress.put(i, self._hold(routed[i], answer.held, progress))
            if answer.held and not (answer.fresh or answer.stale):
                continue
            outcome = self._admitted(routed[i], plans[i], answer, progress)
            if isinstance(outcome, Job):
                jobs[i] = outcome
            else:
                progress.put(i, outcome)
        return jobs

    def _hold(self, routed: Routed, held: list[str], progress: BundleProgress) -> Settlement:
        """Put off the ids held back behind another status of their message, unsent."""
        envelope, event, target = routed
        job = Job(envelope.narrowed(held), replace(event, message_ids=tuple(held)), target, [])
        why = "another status of the message is on its way; judged again after it"
        due = time.time() + HOLD * random.uniform(1, 2)
        return self.settler.defer(job, due, why, progress.writes)

    def _translate_all(
        self, routed: dict[int, Routed], progress: BundleProgress
    ) -> dict[int, Plan]:
        plans: dict[int, Plan] = {}
        for i, (envelope, event, target) in routed.items():
            try:
                plans[i] = translate(event, target)
            except NotDeliverable as exc:
                message = f"{exc} (target {target.name!r} is a {target.kind} target)"
                progress.put(i, self._invalid(envelope, message, target, progress))
            except Exception as exc:  # a bug must cost this event, not the bundle
                message = f"internal error translating the event ({type(exc).__name__})"
                progress.put(i, self._invalid(envelope, message, target, progress))
        return plans

    def _invalid(
        self, envelope: Envelope, message: str, target: Target, progress: BundleProgress
    ) -> Settlement:
        writes = progress.writes
        return self.settler.dead(envelope, "invalid", message, target.name, writes, claims=False)

    def _admitted(
        self, routed: Routed, plan: Plan, answer: Admitted, progress: BundleProgress
    ) -> Job | Settlement:
        """What the ledger's answer makes of one event: a job, or its settlement."""
        envelope, event, target = routed
        writes = progress.writes
        if answer.newer:  # a newer relay holds this event's claims: leave it to one of those
            job = Job(envelope, event, target, [])
            why = "its claims are in a newer relay's format; left for a worker that knows it"
            return self.settler.defer(job, time.time() + NEWER_PAUSE, why, progress.writes)
        if answer.duplicate:
            writes.count(target.name, "duplicate")
            return Settlement("done", f"duplicate of event {event.event_id} (posted once)")
        if isinstance(plan, Skip):
            writes.marks.append(Done(target.name, event.event_id, tuple(answer.fresh)))
            writes.count(target.name, "skipped")
            return Settlement("done", f"skipped: {plan.reason}")
        if answer.stale:
            writes.marks.append(Done(target.name, event.event_id, tuple(answer.stale)))
            if not (answer.fresh or answer.held):
                writes.count(target.name, "stale")
            if not answer.fresh:
                return Settlement("done", "stale: a newer status was already delivered")
        if len(answer.fresh) < len(event.message_ids):  # the rest is done, held, or stale
            event = replace(event, message_ids=tuple(answer.fresh))
            narrowed = translate(event, target)
            assert not isinstance(narrowed, Skip)  # the status is the same: it was not skipped
            return Job(envelope.narrowed(answer.fresh), event, target, narrowed)
        return Job(envelope, event, target, plan)


def _entry(routed: Routed, plan: Plan) -> Entry:
    """The ledger entry of one event: claim its message ids for this envelope and, unless
    the status is skipped, check their status order."""
    envelope, event, target = routed
    hold = target.retry.max_age + CLAIM_MARGIN
    status = None if isinstance(plan, Skip) else event.status  # a skipped status orders nothing
    mids = event.message_ids
    return Entry(target.name, event.event_id, envelope.id, hold, mids, event.occurred_ms, status)
