"""Sending a batch's requests: coalesced per target, each answer credited to every event in it.

A coalesced request carries parts of several events' first attempts. Its answer is each part's
answer: all are delivered, or all retry (the target, not an event, failed); retries travel
alone. A permanent refusal of a request
with several parts is not trusted to be every event's fault: each part is then sent alone, and
only the parts refused alone become dead letters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from tasks.classify import HttpResult, Outcome, Permanent
from tasks.envelope import Envelope
from tasks.events import Event
from tasks.outbound import OutboundRequest
from tasks.targets import TARGET_KINDS
from worker.config import Target
from worker.delivery.exchange import UNSENT, Exchange
from worker.delivery.settlement import Attempt, Tally
from worker.stores.breaker import CircuitBreaker
from worker.stores.ratelimit import RateLimiter

MARK_EVERY = 0.02


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
    marked: bool = False
    """Its done mark and count are already written (it was delivered whole)."""

    def fully_delivered(self) -> bool:
        tally = self.tally
        return len(tally.delivered) == sum(len(r.message_ids) for r in self.plan) and not (
            tally.retry or tally.rejected or self.deferred
        )


@dataclass(frozen=True, slots=True)
class _Sent:
    future: Future[tuple[HttpResult, Outcome]]
    target: Target
    members: list[tuple[Job, OutboundRequest]]


class Sender:
    """Sends jobs' requests, fewest requests first (coalesced), and tallies the answers."""

    def __init__(self, breaker: CircuitBreaker, limiter: RateLimiter, threads: int) -> None:
        self.limiter = limiter
        self.exchange = Exchange(breaker)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="relay-http")

    def send_all(
        self, jobs: list[Job], deadline: float, delivered: Callable[[list[Job]], None]
    ) -> None:
        """Send every job's plan; each job's tally gets one attempt per request of its plan,
        except requests a rate limit holds back (listed in `job.deferred`). `delivered` hears
        of jobs accepted whole while other answers are awaited (see `_collect`)."""
        by_target: dict[str, list[tuple[Job, OutboundRequest]]] = {}
        for job in jobs:
            job.envelope.attempts += 1
            by_target.setdefault(job.target.name, []).extend((job, r) for r in job.plan)
        sent: list[_Sent] = []
        for parts in by_target.values():
            sent += self._submit(parts[0][0].target, parts, deadline)
        self._collect(sent, deadline, delivered)

    def _submit(
        self, target: Target, parts: list[tuple[Job, OutboundRequest]], deadline: float
    ) -> list[_Sent]:
        """Start sending a target's requests at once, on the HTTP pool: a batch takes about
        one answer's time, not the sum of its answers' (what a 50 ms target would cost)."""
        self.exchange.authenticator(target)  # made here, not raced for by the pool's threads
        limited_until: float | None = None
        sent = []
        for request, members in _coalesced(target, parts):
            if limited_until is None:
                limited_until = self._limited_until(target, deadline)
            if limited_until is not None:
                for job, part in members:
                    _defer(job, part, limited_until, "rate limit reached")
                continue
            future = self._pool.submit(self.exchange, target, request, deadline)
            sent.append(_Sent(future, target, members))
        return sent

    def _collect(
        self, sent: list[_Sent], deadline: float, delivered: Callable[[list[Job]], None]
    ) -> None:
        """Credit each answer as it comes. Jobs delivered whole are marked done while other
        answers are still awaited, every MARK_EVERY seconds (a worker killed meanwhile re-posts
        only what was in flight or answered since); the last ones with the rest of the batch."""
        by_future = {s.future: s for s in sent}
        ready: list[Job] = []
        marked = time.monotonic()
        for future in as_completed(by_future):
            one = by_future.pop(future)
            result, outcome = future.result()
            if isinstance(outcome, Permanent) and len(one.members) > 1:
                for member in one.members:  # whose fault was it? ask one part at a time
                    alone, answer = self.exchange(one.target, member[1], deadline)
                    self._credit([member], answer, alone)
            else:
                self._credit(one.members, outcome, result)
            ready += {id(job): job for job, _ in one.members if job.fully_delivered()}.values()
            # At most every MARK_EVERY: a round trip per answer was a tenth of the CPU.
            if ready and by_future and time.monotonic() - marked >= MARK_EVERY:
                delivered(ready)
                ready, marked = [], time.monotonic()

    def _limited_until(self, target: Target, deadline: float) -> float | None:
        """Reserve one request under the target's rate limit, sleeping up to the limiter's
        max wait but never past the task's deadline; or say until when the rest must wait."""
        if not target.rate_limit:
            return None
        budget = deadline - time.monotonic()
        wait = self.limiter.acquire(target.name, target.rate_limit, max_wait=budget)
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
