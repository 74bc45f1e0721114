"""Upgrading from the previous release (CHANGELOG.md) with both running on one Redis: the
previous release's workers, installed from this repository's history into a venv of their own,
beside this release's worker (tests/support/upgrade.py plays the scenario once per module).

The previous release's work is finished, nothing is lost and nothing posted twice (but what
a kill -9 may leave unread), and each release's CLI reads the other's dead letters, with
RELAY_COMPAT_0_1 at its default (`on`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.harness import Relay, posted_ids
from tests.support.ingress import SECRETS
from tests.support.releases import PREVIOUS, Installed, install
from tests.support.upgrade import NEW_CONFIG, TIMING, Upgrade
from worker.dev.sandbox import Sandbox
from worker.settings import get_settings
from worker.stores.correlations import Correlations
from worker.stores.deadletters import DeadLetter, DeadLetterStore

pytestmark = pytest.mark.timeout(300)
UNREAD = 0.25
"""Seconds before a kill -9 within which an answered request may be posted again: its answer
may not have been read (at least once allows that, and only that) when nothing says it was."""


@pytest.fixture(scope="module")
def previous() -> Installed:
    return install(PREVIOUS)


@pytest.fixture(scope="module")
def upgrade(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    sandbox_server: Sandbox,
    previous: Installed,
) -> Iterator[Upgrade]:
    patch = pytest.MonkeyPatch()
    for name, value in {**SECRETS, **TIMING}.items():
        patch.setenv(name, value)
    sandbox_server.clear_faults()
    sandbox_server.clear_requests()
    tmp = tmp_path_factory.mktemp("upgrade")
    relay = Relay(tmp, redis_url, sandbox_server.url, patch, NEW_CONFIG)
    relay.env.update({**SECRETS, **TIMING})
    scenario = Upgrade(relay, previous, sandbox_server)
    try:
        scenario.run()
        scenario.seen["tally"] = tally(scenario)
        yield scenario
    finally:
        relay.stop_all()
        sandbox_server.clear_faults()
        patch.undo()
        get_settings.cache_clear()


def tally(up: Upgrade) -> dict[str, Any]:
    """Where each message id landed, and why those lost or posted twice were (by cause)."""
    posts, letters = up.posts(), list(DeadLetterStore().iter())
    marks = up.state.old_marks(up.groups.keys)
    causes = _lost(up, set(posts), letters) | _twice(up, posts, marks)
    twice = {m for m, n in posts.items() if n > 1}
    allowed = causes["twice_answer_unread_at_kill"]
    return {
        "events": len(up.groups.expected()),
        "lost": sum(len(ids) for name, ids in causes.items() if name.startswith("lost")),
        "posted_twice": sum(posts[m] - 1 for m in twice),
        "posted_twice_not_allowed": sum(posts[m] - 1 for m in twice - allowed),
        **{name: len(ids) for name, ids in causes.items()},
        "dead_letters_left": len(letters),
        "wrapped_items_dead_lettered_by_0_1": sum(
            isinstance(d.event, str) and d.event.startswith("\x01r:") for d in letters
        ),
        "moved_by_0_1_recovery": up.old_moves(),
        "held_by_0_1_at_kill": up.seen["held_at_kill"],
        "claims_in_0_1_keys": len(marks),
        "old_cli_reads_new_dead_letters": up.seen["old_cli_reads_dead_letters"],
        "ids": {name: sorted(ids)[:5] for name, ids in causes.items() if ids},
    }


def _lost(up: Upgrade, posted: set[str], letters: list[DeadLetter]) -> dict[str, set[str]]:
    """Message ids neither posted nor a dead letter with its reason, by where they are."""
    wrapped = {m for d in letters if isinstance(d.event, str) for m in _ids_in(d.event)}
    dead = {m for d in letters if isinstance(d.event, dict) for m in d.event["message_ids"]}
    stranded = {m for item in up.state.old_items() for m in _ids_in(item)}
    lost = up.groups.expected() - posted - dead
    return {
        "lost_as_invalid_dead_letter_in_0_1": lost & wrapped,
        "lost_stranded_in_0_1_list": lost & stranded,
        "lost_other": lost - wrapped - stranded,
    }


def _twice(up: Upgrade, posts: Counter[str], marks: dict[str, str]) -> dict[str, set[str]]:
    """Message ids posted more than once, by cause: in this order, each cause taking what the
    ones before it left (an answer 0.1.0 read and recorded, its done mark, is not one it may
    not have read)."""
    twice = {m for m, n in posts.items() if n > 1}
    kill = up.marks["kill"]
    causes: dict[str, set[str]] = {}
    for name, ids in (
        ("twice_producer_copy_after_upgrade", set(up.groups.copies)),
        (
            "twice_0_1_recovery_of_live_lanes",
            {m for m, n in up.seen["posts_before_kill"].items() if n > 1},
        ),
        ("twice_0_1_done_mark_ignored", {m for m, mark in marks.items() if mark == "done"}),
        ("twice_answer_unread_at_kill", _answered_within(up, kill - UNREAD, kill)),
        ("twice_twin_parked_copies", up.seen["twins"]),
        ("twice_other", twice),
    ):
        causes[name] = (twice & ids) - set().union(*causes.values())
    return causes


def _ids_in(text: str) -> list[str]:
    """Message ids in an inbox item's text (wrapped or not), as far as it can be read."""
    body = text.partition("\n")[2] if text.startswith("\x01r:") else text
    try:
        value = json.loads(body)
    except ValueError:
        return []
    ids = value.get("message_ids") if isinstance(value, dict) else None
    return [str(m) for m in ids] if isinstance(ids, list) else []


def _answered_within(up: Upgrade, start: float, end: float) -> set[str]:
    answered = [r for r in up.sandbox.requests() if start <= r["time"] <= end]
    return set(posted_ids(answered))


def test_the_previous_release_runs_beside_this_one_and_what_it_left_is_finished(
    upgrade: Upgrade, previous: Installed, figures
) -> None:
    # given the scenario played (the previous release alone, both, this one alone)
    g, posts = upgrade.groups, upgrade.posts()
    figures(
        install_seconds=round(previous.install_seconds, 1),
        scenario_seconds=upgrade.seen["scenario_seconds"],
        replay=upgrade.seen["replay"][1],
    )
    # then what the previous release delivered, parked and dead-lettered before the overlap
    # was finished: delivered; its parked retries after the outage, and its refused events
    # once this release's CLI replayed them, both by this release's worker (the target
    # accepted them only once the old workers were gone)
    assert set(g.before) <= set(posts)
    assert set(g.parked) <= set(posts)
    assert set(g.refused) <= set(posts)
    # and the correlation records registered through this release's ingress survived the
    # previous release's workers, their receipts delivered before the overlap too
    assert all(Correlations().lookup("smpp", pmid) for pmid in g.records)
    assert set(g.records[:3]) <= set(posts)


def test_nothing_lost_and_nothing_posted_twice_across_the_upgrade(
    upgrade: Upgrade, figures
) -> None:
    counts = upgrade.seen["tally"]
    figures(**{k: v for k, v in counts.items() if k != "ids"}, ids=counts["ids"])
    assert counts["lost"] == 0
    assert counts["posted_twice_not_allowed"] == 0
    # and operators' tools of either release read what the other wrote
    assert counts["old_cli_reads_new_dead_letters"]
