"""One request to a target and what its answer means: authentication (with one more try on
a fresh token after a 401), the transport, classification, and the circuit breaker's view
(noted in memory: written to Redis by the answer book, never from here).

It never raises: whatever goes wrong becomes an answer `classify` understands or, for a bug,
an outcome that settles the request (the event is never lost and the worker never stops).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tasks.classify import HttpResult, Outcome, Permanent, RetryLater, classify
from tasks.outbound import OutboundRequest
from worker.config import Target
from worker.delivery.auth import Authenticator, AuthError, make_authenticator
from worker.delivery.transport import NOT_SENT, send, start
from worker.observe import metrics

log = logging.getLogger("relay.sending")

UNSENT = RetryLater("not sent: this task's time budget (RELAY_TASK_BUDGET) ran out", 0.0)
"""The outcome of a request not sent because the task's time was up: no attempt is spent."""
Answered = Callable[[HttpResult, Outcome], None]


class Exchange:
    """Sends one request and classifies the answer; keeps one authenticator per target."""

    def __init__(self, heard: Callable[[str, bool], None]) -> None:
        self.heard = heard
        """Told, per answer, the target's name and whether it failed (the breaker's view)."""
        self._auth: dict[str, Authenticator] = {}
        # A 401's second try waits for a fresh token: never on the HTTP loop's thread.
        self._again = ThreadPoolExecutor(max_workers=4, thread_name_prefix="relay-reauth")

    def authenticator(self, target: Target) -> Authenticator:
        auth = self._auth.get(target.name)
        if auth is None:
            auth = self._auth[target.name] = make_authenticator(target.auth)
        return auth

    def __call__(
        self, target: Target, request: OutboundRequest, deadline: float
    ) -> tuple[HttpResult, Outcome]:
        """Send, waiting for the answer on this thread."""
        if time.monotonic() >= deadline:  # park it at once, well inside the visibility timeout
            return NOT_SENT, UNSENT
        auth = self.authenticator(target)
        result = self._send(target, request, auth, deadline)
        if result.status == 401:
            auth.invalidate()
            if auth.refreshable:  # the cached token may just have expired: one fresh try
                result = self._send(target, request, auth, deadline)
        return self._judge(target, request, result)

    def start(
        self, target: Target, request: OutboundRequest, deadline: float, answered: Answered
    ) -> None:
        """Send without waiting: `answered` is told the answer and what it means once, on the
        HTTP loop's thread (on this one when nothing was sent)."""
        if time.monotonic() >= deadline:
            answered(NOT_SENT, UNSENT)
            return
        auth = self.authenticator(target)

        def first(result: HttpResult) -> None:
            if result is NOT_SENT:  # its turn came after the task's deadline: no attempt
                answered(NOT_SENT, UNSENT)
                return
            if result.status == 401:
                auth.invalidate()
                if auth.refreshable:  # one fresh try, on a thread that may wait for a token
                    self._again.submit(self._retry, target, request, auth, deadline, answered)
                    return
            answered(*self._judge(target, request, result))

        try:
            headers = auth.headers(request, deadline)
        except AuthError as exc:
            first(HttpResult(None, network_error=f"credentials unavailable: {exc}"))
            return
        except Exception as exc:  # a bug must cost a retry, never the event or the worker
            first(_bug(target, exc))
            return
        start(request, headers, target.timeout, first, start_by=deadline)

    def _retry(
        self,
        target: Target,
        request: OutboundRequest,
        auth: Authenticator,
        deadline: float,
        answered: Answered,
    ) -> None:
        answered(*self._judge(target, request, self._send(target, request, auth, deadline)))

    def _judge(
        self, target: Target, request: OutboundRequest, result: HttpResult
    ) -> tuple[HttpResult, Outcome]:
        """What an answer means, noted in the metrics and for the breaker."""
        metrics.observe_request(target.name, request.endpoint, result.duration)
        try:
            outcome = classify(request.api, result)
        except Exception as exc:  # a bug: the answer may have been an acceptance, so no retry
            log.error("cannot classify an answer from %s (%s)", target.name, type(exc).__name__)
            outcome = Permanent(f"internal error classifying the answer ({type(exc).__name__})")
        # An answer that is not a failure of the target (even a rejection) means it is up.
        self.heard(target.name, isinstance(outcome, RetryLater))
        return result, outcome

    def _send(
        self, target: Target, request: OutboundRequest, auth: Authenticator, deadline: float
    ) -> HttpResult:
        try:
            return send(request, auth.headers(request, deadline), target.timeout)
        except AuthError as exc:
            return HttpResult(None, network_error=f"credentials unavailable: {exc}")
        except Exception as exc:  # a bug must cost a retry, never the event or the worker
            return _bug(target, exc)


def _bug(target: Target, exc: Exception) -> HttpResult:
    log.error("unexpected error sending to %s (%s)", target.name, type(exc).__name__)
    return HttpResult(None, network_error=f"internal error: {type(exc).__name__}")
