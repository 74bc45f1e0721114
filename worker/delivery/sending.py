"""Sending a batch's requests: coalesced per target, each answer credited to every event in it.

A coalesced request carries parts of several events' first attempts. Its answer is each part's
answer: all are delivered, or all retry (the target, not an event, failed); retries travel
alone. A permanent refusal of a request
with several parts is not trusted to be every event's fault: each part is then sent alone, and
only the parts refused alone become dead letters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from tasks.classify import HttpResult, Outcome, Permanent, RetryLater, classify
from tasks.envelope import Envelope
from tasks.events import Event
from tasks.outbound import OutboundRequest
from tasks.targets import TARGET_KINDS
from worker.config import Target
from worker.delivery.auth import Authenticator, AuthError, make_authenticator
from worker.delivery.settlement import Attempt, Tally
from worker.delivery.transport import send
from worker.observe import metrics
from worker.stores.breaker import CircuitBreaker
from worker.stores.ratelimit import RateLimiter

log = logging.getLogger("relay.sending")
MARK_EVERY = 0.02
BUDGET_SPENT = "not sent yet: this task's time budget (RELAY_TASK_BUDGET) ran out"


@dataclass
class Job:
    """One admitted event of a batch: what to send, and what became of each request."""

    envelope: Envelope
    event: Event
    target: Target
    plan: list[OutboundRequest]
    tally: Tally = field(default_factory=Tally)
    deferred: list[OutboundRequest] = field(default_factory=list)
    """Requests a rate limit held back, unsent, until `defer_until`."""
    defer_until: float = 0.0
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
        self.breaker = breaker
        self.limiter = limiter
        self._auth: dict[str, Authenticator] = {}
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
        self._authenticator(target)  # made here, not raced for by the pool's threads
        limited_until: float | None = None
        sent = []
        for request, members in _coalesced(target, parts):
            if limited_until is None:
                limited_until = self._limited_until(target)
            if limited_until is not None:
                for job, part in members:
                    job.deferred.append(part)
                    job.defer_until = limited_until
                continue
            future = self._pool.submit(self._exchange, target, request, deadline)
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
                    alone, answer = self._exchange(one.target, member[1], deadline)
                    self._credit([member], answer, alone)
            else:
                self._credit(one.members, outcome, result)
            ready += {id(job): job for job, _ in one.members if job.fully_delivered()}.values()
            # At most every MARK_EVERY: a round trip per answer was a tenth of the CPU.
            if ready and by_future and time.monotonic() - marked >= MARK_EVERY:
                delivered(ready)
                ready, marked = [], time.monotonic()

    def _limited_until(self, target: Target) -> float | None:
        """Reserve one request under the target's rate limit (sleeping up to the limiter's
        max wait), or say until when the rest must wait."""
        if not target.rate_limit:
            return None
        wait = self.limiter.acquire(target.name, target.rate_limit)
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
            job.envelope.record(
                attempt=job.envelope.attempts,
                endpoint=part.endpoint,
                status=result.status,
                error=result.network_error,
                duration=round(result.duration, 4),
                outcome=outcome.word,
            )
            job.tally.add(Attempt(part, outcome, result))

    def _exchange(
        self, target: Target, request: OutboundRequest, deadline: float
    ) -> tuple[HttpResult, Outcome]:
        if time.monotonic() >= deadline:  # park it at once, well inside the visibility timeout
            return HttpResult(None), RetryLater(BUDGET_SPENT, 0.0)
        auth = self._authenticator(target)
        try:
            result = send(request, auth.headers(request), target.timeout)
        except AuthError as exc:
            result = HttpResult(None, network_error=f"credentials unavailable: {exc}")
        except Exception as exc:  # a bug must cost a retry, never the event or the worker
            log.exception("unexpected error sending to %s", target.name)
            result = HttpResult(None, network_error=f"internal error: {type(exc).__name__}")
        if result.status == 401:
            auth.invalidate()
        metrics.observe_request(target.name, request.endpoint, result.duration)
        outcome = classify(request.api, result)
        if isinstance(outcome, RetryLater):
            self.breaker.failure(target.name)
        else:  # an answer that is not a failure of the target (even a rejection) means it is up
            self.breaker.success(target.name)
        return result, outcome

    def _authenticator(self, target: Target) -> Authenticator:
        auth = self._auth.get(target.name)
        if auth is None:
            auth = self._auth[target.name] = make_authenticator(target.auth)
        return auth


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
