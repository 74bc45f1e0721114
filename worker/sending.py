"""Sending a batch's requests: coalesced per target, each answer credited to every event in it.

A coalesced request carries parts of several events. Its answer is each part's answer: all are
delivered, or all retry (the target, not an event, failed). A permanent refusal of a request
with several parts is not trusted to be every event's fault: each part is then sent alone, and
only the parts refused alone become dead letters.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tasks.classify import HttpResult, Outcome, Permanent, Retry, classify
from tasks.events import Event
from tasks.outbound import OutboundRequest
from tasks.targets import TARGET_KINDS
from worker import metrics
from worker.auth import Authenticator, AuthError, make_authenticator
from worker.breaker import CircuitBreaker
from worker.config import Target
from worker.envelope import Envelope
from worker.settlement import Attempt, Tally
from worker.transport import send

log = logging.getLogger("relay.sending")
BUDGET_SPENT = "not sent yet: this task's time budget (RELAY_TASK_BUDGET) ran out"


@dataclass
class Job:
    """One admitted event of a batch: what to send, and what became of each request."""

    envelope: Envelope
    event: Event
    target: Target
    plan: list[OutboundRequest]
    tally: Tally = field(default_factory=Tally)


class Sender:
    """Sends jobs' requests, fewest requests first (coalesced), and tallies the answers."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self._auth: dict[str, Authenticator] = {}

    def send_all(self, jobs: list[Job], deadline: float) -> None:
        """Send every job's plan; each job's tally gets one attempt per request of its plan."""
        by_target: dict[str, list[tuple[Job, OutboundRequest]]] = {}
        for job in jobs:
            job.envelope.attempts += 1
            by_target.setdefault(job.target.name, []).extend((job, r) for r in job.plan)
        for parts in by_target.values():
            target = parts[0][0].target
            merged = TARGET_KINDS[target.kind].coalesce([request for _, request in parts])
            for request, indexes in merged:
                members = [parts[i] for i in indexes]
                if time.monotonic() >= deadline:  # park the rest at once, inside the visibility
                    self._credit(members, Retry(BUDGET_SPENT, 0.0), HttpResult(None))
                    continue
                result, outcome = self._exchange(target, request)
                if isinstance(outcome, Permanent) and len(members) > 1:
                    for member in members:  # whose fault was it? ask one part at a time
                        alone, answer = self._exchange(target, member[1])
                        self._credit([member], answer, alone)
                else:
                    self._credit(members, outcome, result)

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
                outcome=type(outcome).__name__.lower(),
            )
            job.tally.add(Attempt(part, outcome, result))

    def _exchange(self, target: Target, request: OutboundRequest) -> tuple[HttpResult, Outcome]:
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
        if isinstance(outcome, Retry):
            self.breaker.failure(target.name)
        else:  # an answer that is not a failure of the target (even a rejection) means it is up
            self.breaker.success(target.name)
        return result, outcome

    def _authenticator(self, target: Target) -> Authenticator:
        auth = self._auth.get(target.name)
        if auth is None:
            auth = self._auth[target.name] = make_authenticator(target.auth)
        return auth
