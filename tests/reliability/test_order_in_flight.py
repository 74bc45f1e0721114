"""An older status of a message is never posted after a newer one: not when both travel in one
bundle, nor when they travel in bundles in flight side by side (through real workers, a target
that records when each request came in and when its answer left)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from itertools import pairwise

import pytest

from tests.reliability.gate import Answer, GateTarget
from tests.support.harness import Relay, event, wait_for

pytestmark = pytest.mark.timeout(180)
MESSAGES = 300
NEWER, OLDER = "2026-11-23T10:00:05Z", "2026-11-23T10:00:01Z"
RANK = {"sent": 0, "delivered": 1}


def _posts(gate: GateTarget) -> dict[str, list[tuple[Answer, str]]]:
    """Per message id, the accepted requests that carried it (by arrival) and the status."""
    posts: dict[str, list[tuple[Answer, str]]] = defaultdict(list)
    for answer in sorted(gate.answers(), key=lambda a: a.received):
        if 200 <= answer.status < 300:
            for mid, status in answer.posted:
                posts[mid].append((answer, status))
    return posts


def _out_of_order(posts: dict[str, list[tuple[Answer, str]]]) -> list[str]:
    """Message ids the target saw end on an older status, or saw an older status arrive after
    a newer one, or saw two statuses in flight at once (then either may land last)."""
    wrong = []
    for mid, seen in posts.items():
        ranks = [RANK[status] for _, status in seen]
        overlap = any(b.received < a.answered for (a, _), (b, _) in pairwise(seen))
        if ranks != sorted(ranks) or ranks[-1] != RANK["delivered"] or overlap:
            wrong.append(mid)
    return wrong


def _all_in_order(relay: Relay, gate: GateTarget, figures: Callable[..., None]) -> None:
    """Every message ends on `delivered`; none saw an older status after a newer one, nor two
    at once."""
    relay.wait_settled(2 * MESSAGES, timeout=120)
    posts = _posts(gate)
    wrong = _out_of_order(posts)
    figures(messages=MESSAGES, out_of_order=len(wrong), counts=relay.counts("md"))
    assert len(posts) == MESSAGES
    assert wrong == []


def test_an_older_status_right_behind_a_newer_one_in_one_bundle_is_never_posted_after_it(
    gate: GateTarget, gate_relay: Callable[..., Relay], figures
) -> None:
    # given 300 messages, each a `delivered` and right behind it an older `sent`, waiting in
    # the inbox before the worker starts (so they travel in bundles of 200)
    relay = gate_relay()
    events = []
    for i in range(MESSAGES):
        events.append(event("md", "delivered", f"m-{i}", occurred_at=NEWER))
        events.append(event("md", "sent", f"m-{i}", occurred_at=OLDER))
    relay.push(*events)

    # when a worker delivers them
    relay.start_worker("order")

    # then every message ends on `delivered`, the older `sent` never posted after it
    _all_in_order(relay, gate, figures)


def test_statuses_in_bundles_in_flight_side_by_side_are_posted_in_order(
    gate: GateTarget, gate_relay: Callable[..., Relay], figures
) -> None:
    # given two workers and a target that answers after 3 s; 150 messages whose `delivered`
    # is on its way when an older `sent` arrives, and 150 whose `sent` is on its way when a
    # newer `delivered` arrives
    relay = gate_relay()
    gate.arm(delay=3.0)
    relay.start_worker("a")
    relay.start_worker("b")
    half = MESSAGES // 2
    first = [event("md", "delivered", f"m-a-{i}", occurred_at=NEWER) for i in range(half)]
    first += [event("md", "sent", f"m-b-{i}", occurred_at=OLDER) for i in range(half)]
    second = [event("md", "sent", f"m-a-{i}", occurred_at=OLDER) for i in range(half)]
    second += [event("md", "delivered", f"m-b-{i}", occurred_at=NEWER) for i in range(half)]

    # when the second statuses arrive while the first are in flight
    relay.push(*first)
    wait_for(lambda: gate.received() > 0, 30, "the first requests")
    relay.push(*second)

    # then no message saw an older status after a newer one, nor two at once
    _all_in_order(relay, gate, figures)
