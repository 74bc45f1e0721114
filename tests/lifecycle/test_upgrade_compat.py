"""The compatibility layer with the previous release (0.1.0), one piece at a time: this
release's side in this process, the previous release's side in a process of its own, running
its own code from its own venv (tests/support/releases.py), on one real Redis."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import redis

from tasks.envelope import Envelope
from tests.support.harness import own_key_prefix
from tests.support.releases import PREVIOUS, Installed, install
from worker.intake.feeder import Feeder
from worker.intake.inbox import Inbox
from worker.intake.inflight import (
    lane_keys,
    lane_name,
    lanes,
    recover_orphans,
    resumed_key,
    stuck,
)
from worker.settings import get_settings
from worker.stores.connection import key
from worker.stores.deadletters import DeadLetter, DeadLetterStore
from worker.stores.ledger import Entry, EventLedger

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def previous() -> Installed:
    return install(PREVIOUS)


@pytest.fixture
def prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with own_key_prefix(redis_url, monkeypatch, "t-compat") as name:
        yield name


def old_python(previous: Installed, code: str) -> str:
    """Run `code` with the previous release's own modules (its settings read the same
    REDIS_URL and RELAY_KEY_PREFIX); what it prints."""
    done = previous.run([str(previous.python), "-c", code], dict(os.environ))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def lane_feeder(raw_client: redis.Redis, owner: str) -> Feeder:
    def deliver(envelopes: list[Envelope], settled: set[str]) -> None:
        settled.update(e.id for e in envelopes)

    return Feeder(raw_client, deliver, owner, 1, 50)


def lane_holding(raw_client: redis.Redis, owner: str, count: int) -> tuple[Feeder, list[bytes]]:
    """A live worker of this release (its lease renewed) whose lane took `count` events from
    the inbox; what it took."""
    Inbox(raw_client).push([json.dumps({"event_id": f"e{i}"}) for i in range(count)])
    feeder = lane_feeder(raw_client, owner)
    feeder._renew_lease()
    return feeder, feeder.take(0, 0)


def entry(owner: str, event_id: str = "ev-1", mids: tuple[str, ...] = ("m-1",)) -> Entry:
    return Entry("md", event_id, owner, 600.0, mids, 1000, "delivered")


# in-flight lists and leases ---------------------------------------------------------------


def test_the_previous_releases_recovery_leaves_a_live_lane_alone(
    prefix: str, raw_client: redis.Redis, previous: Installed
) -> None:
    # given a live worker of this release whose lane holds two events
    _, taken = lane_holding(raw_client, "new@h:1", 2)
    assert len(taken) == 2

    # when a worker of the previous release looks for dead bundlers' lists
    code = "from worker.inbox import recover_orphans as r, get_redis; print(r(get_redis()))"
    moved = old_python(previous, code)

    # then it finds none: the lane keeps its events, the inbox stays empty
    assert moved == "0"
    assert raw_client.llen(lane_keys(lane_name("new@h:1", 0))[0]) == 2
    assert raw_client.llen(key("inbox")) == 0


def test_a_dead_workers_items_never_reach_the_inbox_the_previous_release_reads(
    prefix: str, raw_client: redis.Redis, previous: Installed
) -> None:
    # given a worker of this release that died holding three events in its lane
    dead, taken = lane_holding(raw_client, "dead@h:2", 3)
    raw_client.delete(dead.lease)

    # when this release's recovery takes the lane back, a producer pushes one more event, and
    # a bundler of the previous release takes what the inbox holds
    assert recover_orphans(raw_client) == 3
    Inbox(raw_client).push([json.dumps({"event_id": "fresh"})])
    code = (
        "import redis; from worker.redisconn import key; from worker.settings import get_settings\n"
        "c = redis.Redis.from_url(get_settings().redis_url)\n"
        "print(repr([i.decode() for i in c.lrange(key('inbox'), 0, -1)]))"
    )
    inbox_seen_by_old = old_python(previous, code)

    # then the previous release sees only the producer's event, and this release's feeder
    # takes the dead worker's events first, with the ids they had (their claims are theirs)
    assert inbox_seen_by_old == repr(['{"event_id": "fresh"}'])
    assert raw_client.llen(resumed_key()) == 3
    again = lane_feeder(raw_client, "next@h:3").take(0, 0)
    assert again[:3] == taken and again[3].endswith(b'{"event_id": "fresh"}')


def test_a_live_old_workers_list_is_registered_then_recovered_and_reported(
    prefix: str, raw_client: redis.Redis
) -> None:
    # given a live 0.1.0 bundler (its lease, as 0.1.0 writes it) holding nothing yet
    owner = "celery@old:7"
    raw_client.set(key("inflight-lease", owner), owner, ex=30)

    # when a worker of this release starts (its one SCAN), then the 0.1.0 worker takes two
    # events into its list and is killed (its lease runs out)
    recover_orphans(raw_client, scan=True)
    registered = owner in lanes(raw_client)
    raw_client.rpush(key("inflight", owner), b'{"event_id": "a"}', b'{"event_id": "b"}')
    raw_client.delete(key("inflight-lease", owner))
    reported = stuck(raw_client)
    moved = recover_orphans(raw_client)

    # then the list was in the set of lanes, so that health reported it and the periodic
    # recovery (no SCAN) put its events back on the inbox, where 0.1.0 reads them too
    assert registered and owner not in lanes(raw_client)
    assert any(f"in-flight list {owner} of a stopped 0.1.0 worker holds 2" in p for p in reported)
    assert moved == 2 and raw_client.llen(key("inbox")) == 2


# claims and done marks --------------------------------------------------------------------


def test_an_event_the_previous_release_delivered_is_a_duplicate(
    prefix: str, redis_client: redis.Redis, previous: Installed
) -> None:
    # given an event the previous release admitted and marked done, one it holds pending
    code = (
        "from worker.ledger import Admission, EventLedger, Entry\n"
        "Admission().run([Entry('md', 'ev-done', 'old-1', 600)])\n"
        "Admission().run([Entry('md', 'ev-held', 'old-2', 600)])\n"
        "EventLedger().done('md', 'ev-done')"
    )
    old_python(previous, code)

    # when this release admits copies of both, and the held one's own envelope comes back
    copies = EventLedger(redis_client).admit(
        [entry("new-1", "ev-done"), entry("new-2", "ev-held"), entry("old-2", "ev-held")]
    )

    # then the copies are duplicates, and the envelope that holds the claim goes on
    assert [a.duplicate for a in copies] == [True, True, False]
    assert copies[2].fresh == ["m-1"]


def test_what_this_release_claims_the_previous_release_counts_a_duplicate(
    prefix: str, redis_client: redis.Redis, previous: Installed
) -> None:
    # given an event this release admitted (on its way, or delivered)
    EventLedger(redis_client).admit([entry("new-1", "ev-1")])

    # when a worker of the previous release meets a copy, and the same envelope again
    code = (
        "from worker.ledger import Admission, Entry\n"
        "print([t for t, _ in Admission().run([Entry('md', 'ev-1', 'old-9', 600), "
        "Entry('md', 'ev-1', 'new-1', 600)])])"
    )

    # then it does not take the copy, and lets this release's own envelope through
    assert old_python(previous, code) == "[False, True]"


def test_a_dead_letter_frees_the_previous_releases_claim_for_its_replay(
    prefix: str, redis_client: redis.Redis
) -> None:
    # given an event this release claimed, which ended as a dead letter
    ledger = EventLedger(redis_client)
    ledger.admit([entry("new-1", "ev-1")])
    ledger.forget("md", "ev-1", ["m-1"], "new-1")

    # when its replay (a new envelope) is admitted
    [replay] = ledger.admit([entry("new-2", "ev-1")])

    # then it is sent
    assert replay.fresh == ["m-1"]


def test_once_compatibility_is_off_the_previous_releases_marks_are_not_read(
    prefix: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a done mark of the previous release
    redis_client.set(key("event", "md", "ev-1"), "done")
    answers = {}
    for mode in ("read", "off"):
        monkeypatch.setenv("RELAY_COMPAT_0_1", mode)
        get_settings.cache_clear()
        # when compatibility is `read`, then `off`, and a copy is admitted, and another event
        copy, other = EventLedger(redis_client).admit(
            [entry(f"new-{mode}", "ev-1", (f"m-{mode}",)), entry(f"new-{mode}", f"ev-{mode}")]
        )
        answers[mode] = (copy.duplicate, other.duplicate)

    # then `read` honours the mark, `off` ignores it, and neither writes a mark of 0.1.0's
    assert answers == {"read": (True, False), "off": (False, False)}
    assert redis_client.exists(key("event", "md", "ev-read"), key("event", "md", "ev-off")) == 0


def test_a_second_copy_of_one_envelope_in_a_bundle_is_a_duplicate(
    prefix: str, redis_client: redis.Redis
) -> None:
    # given a retry parked twice under one envelope id (its worker killed between parking it
    # and acknowledging the message), both copies due together in one bundle
    ledger = EventLedger(redis_client)

    # when the bundle is admitted
    first, second = ledger.admit([entry("env-1"), entry("env-1")])

    # then only the first copy is sent
    assert (first.fresh, second.duplicate) == (["m-1"], True)


# dead letters ------------------------------------------------------------------------------


def test_the_previous_releases_cli_reads_this_releases_dead_letters(
    prefix: str, redis_client: redis.Redis, previous: Installed
) -> None:
    # given a dead letter this release wrote (compatibility on, the default)
    letter = DeadLetter("rejected", "400", {"event_id": "ev-1"}, envelope="env-1")
    DeadLetterStore(redis_client).add(letter)

    # when the previous release's CLI lists the dead letters
    listed = previous.run(previous.cli_argv("dlq", "list", "--json"), dict(os.environ))

    # then it reads the record
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json.loads(listed.stdout)] == [letter.id]
