"""Sending a batch's requests: coalesced per target, each answer credited to every event in it.

A coalesced request carries parts of several events' first attempts. Its answer is each part's
answer: all are delivered, or all retry (the target, not an event, failed); retries travel
alone. A permanent refusal of a request
with several parts is not trusted to be every event's fault: each part is then sent alone, and
only the parts refused alone become dead letters.

Every accepted request's done mark goes to the answer book (`worker.delivery.answers`) in the
thread that read the answer, before anything else is done with it; no Redis call is made on
the way from an answer to its tally (the rate limit is asked before a request is sent, and a
rate limit Redis cannot answer holds the rest back, unsent).
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field

import redis

from tasks.classify import Delivered, HttpResult, Outcome, Permanent
from tasks.envelope import Envelope
from tasks.events import Event
from tasks.outbound import OutboundRequest
from tasks.targets import TARGET_KINDS
from worker.config import Target
from worker.delivery.answers import AnswerBook, Sheet
from worker.delivery.exchange import UNSENT, Exchange
from worker.delivery.settlement import Attempt, Tally
from worker.stores.ledger import Done
from worker.stores.ratelimit import RateLimiter

LIMIT_UNKNOWN = 1.0  # seconds the rest is held back when the rate limit cannot be asked


@dataclass
class Job:
    """One admitted event of a batch: what to send, and what became of each request."""

    envelope: Envelope
    event: Event
    target: Target
    plan: list[OutboundRequest]
    tally: Tally = field(default_factory=Tally)
    deferred: list[OutboundRequest] = field(default_factory=list)
    """Requests held back unsent (a rate limit, the task's time budget) until `defer_until`."""
    defer_until: float = 0.0
    defer_why: str = ""

    def fully_delivered(self) -> bool:
        tally = self.tally
        return len(tally.delivered) == sum(len(r.message_ids) for r in self.plan) and not (
            tally.retry or tally.rejected or self.deferred
        )


@dataclass(frozen=True, slots=True)
class _Sent:
    """A request sent: its target and the job parts it carries."""

    target: Target
    members: list[tuple[Job, OutboundRequest]]


Answers = queue.SimpleQueue[tuple[_Sent, HttpResult, Outcome]]
"""A bundle's answers, each put by the thread that read it."""


class Sender:
    """Sends jobs' requests, fewest requests first (coalesced), and tallies the answers."""

    def __init__(self, book: AnswerBook, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.book = book
        self.exchange = Exchange(book.heard)

    def send_all(self, jobs: list[Job], deadline: float, sheet: Sheet) -> None:
        """Send every job's plan; each job's tally gets one attempt per request of its plan,
        except requests a rate limit holds back (listed in `job.deferred`). The done marks of
        accepted requests go to the answer book on `sheet` as the answers come."""
        by_target: dict[str, list[tuple[Job, OutboundRequest]]] = {}
        for job in jobs:
            job.envelope.attempts += 1
            by_target.setdefault(job.target.name, []).extend((job, r) for r in job.plan)
        coalesced = [
            (parts[0][0].target, _coalesced(parts[0][0].target, parts))
            for parts in by_target.values()
        ]
        answers: Answers = queue.SimpleQueue()
        alone = sum(len(requests) for _, requests in coalesced) == 1
        sent = 0
        for target, requests in coalesced:
            sent += self._submit(target, requests, deadline, (sheet, answers, alone))
        self._collect(sent, answers, deadline, sheet)

    def _submit(
        self,
        target: Target,
        requests: list[tuple[OutboundRequest, list[tuple[Job, OutboundRequest]]]],
        deadline: float,
        how: tuple[Sheet, Answers, bool],
    ) -> int:
        """Start sending a target's requests, each as soon as the rate limit lets it go (a
        burst after waiting for all slots would break the limit); those it holds back past
        the deadline are deferred instead."""
        self.exchange.authenticator(target)  # made here, on the lane, before any answer comes
        limited_until: float | None = None
        sent = 0
        for request, members in requests:
            if limited_until is None:
                limited_until = self._limited_until(target, deadline)
            if limited_until is not None:
                for job, part in members:
                    _defer(job, part, limited_until, "rate limit reached")
                continue
            self._start(_Sent(target, members), request, deadline, how)
            sent += 1
        return sent

    def _start(
        self,
        sent: _Sent,
        request: OutboundRequest,
        deadline: float,
        how: tuple[Sheet, Answers, bool],
    ) -> None:
        """Hand the request to the HTTP loop, which runs a bundle's requests side by side (a
        bundle costs about one answer's time, not the sum of its answers'); the answer goes
        to `answers`. An acceptance's done marks are noted in the thread that read the
        answer, before anything else can happen to the bundle. A bundle's only request is
        sent on this thread: the hand-over to the loop and back cost, at moderate rates, as
        much as the request."""
        sheet, answers, alone = how
        if alone:
            answers.put((sent, *self._ask(sent.target, request, sent.members, deadline, sheet)))
            return

        def answered(result: HttpResult, outcome: Outcome) -> None:
            try:
                if isinstance(outcome, Delivered):
                    marks = [done_mark(job, part.message_ids) for job, part in sent.members]
                    self.book.note(sheet, marks)
            finally:  # the bundle waits for this answer: it must come, whatever happened
                answers.put((sent, result, outcome))

        try:
            self.exchange.start(sent.target, request, deadline, answered)
        except Exception as exc:  # a bug before it was sent: the bundle must not wait for it
            why = f"internal error sending the request ({type(exc).__name__})"
            answered(HttpResult(None, network_error=why), Permanent(why))

    def _ask(
        self,
        target: Target,
        request: OutboundRequest,
        members: list[tuple[Job, OutboundRequest]],
        deadline: float,
        sheet: Sheet,
    ) -> tuple[HttpResult, Outcome]:
        """One request and its answer, waited for; an acceptance's done marks noted at once."""
        result, outcome = self.exchange(target, request, deadline)
        if isinstance(outcome, Delivered):
            self.book.note(sheet, [done_mark(job, part.message_ids) for job, part in members])
        return result, outcome

    def _collect(self, sent: int, answers: Answers, deadline: float, sheet: Sheet) -> None:
        """Credit each answer as it comes."""
        for _ in range(sent):
            one, result, outcome = answers.get()
            if isinstance(outcome, Permanent) and len(one.members) > 1:
                for member in one.members:  # whose fault was it? ask one part at a time
                    alone, answer = self._ask(one.target, member[1], [member], deadline, sheet)
                    self._credit([member], answer, alone)
            else:
                self._credit(one.members, outcome, result)

    def _limited_until(self, target: Target, deadline: float) -> float | None:
        """Reserve one request under the target's rate limit, sleeping up to the limiter's
        max wait but never past the task's deadline; or say until when the rest must wait."""
        if not target.rate_limit:
            return None
        budget = deadline - time.monotonic()
        try:
            wait = self.limiter.acquire(target.name, target.rate_limit, max_wait=budget)
        except redis.RedisError:  # no word from the shared limit: hold the rest back, unsent
            return time.time() + LIMIT_UNKNOWN
        if wait < 0:
            return time.time() - wait
        time.sleep(wait)
        return None

    def _credit(
        self,
        members: list[tuple[Job, OutboundRequest]],
        outcome: Outcome,
        result: HttpResult,
    ) -> None:
        for job, part in members:
            if outcome is UNSENT:
                _defer(job, part, time.time(), "this task's time budget ran out")
                continue
            job.envelope.record(
                attempt=job.envelope.attempts,
                endpoint=part.endpoint,
                status=result.status,
                error=result.network_error,
                duration=round(result.duration, 4),
                outcome=outcome.word,
            )
            job.tally.add(Attempt(part, outcome, result))


def done_mark(job: Job, mids: tuple[str, ...] | list[str]) -> Done:
    """The done mark of a job's delivered message ids: it raises their newest status and
    releases the job's reservation of them."""
    event = job.event
    order = (event.occurred_ms, event.status)
    return Done(job.target.name, event.event_id, tuple(mids), order, owner=job.envelope.id)


def _defer(job: Job, part: OutboundRequest, until: float, why: str) -> None:
    """Hold a request back, unsent: it costs no attempt and is parked for later."""
    job.deferred.append(part)
    job.defer_until = max(job.defer_until, until)
    job.defer_why = why


def _coalesced(
    target: Target, parts: list[tuple[Job, OutboundRequest]]
) -> list[tuple[OutboundRequest, list[tuple[Job, OutboundRequest]]]]:
    """The requests to send for one target, each with the job parts it carries. Only first
    attempts are coalesced: an event that failed once travels alone, so an event that makes
    the target fail cannot drag the same companions down twice."""
    fresh = [p for p in parts if p[0].envelope.attempts == 1]
    merged = TARGET_KINDS[target.kind].coalesce([request for _, request in fresh])
    out = [(request, [fresh[i] for i in indexes]) for request, indexes in merged]
    return out + [(p[1], [p]) for p in parts if p[0].envelope.attempts > 1]
