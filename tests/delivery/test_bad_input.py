"""Bad input loses nothing: invalid and unroutable events, non-JSON lines, broken config."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.harness import Relay, event, wait_for
from worker.dev.processes import worker_argv
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(90)


def test_invalid_and_unroutable_events_become_dead_letters_and_the_worker_keeps_serving(
    relay: Relay, sandbox: Sandbox
) -> None:
    # given a worker, an invalid event, an unroutable one, one invalid for its target kind
    relay.start_worker()
    invalid = event("md", "lost", extra_field=1)
    unroutable = event("nowhere", "sent")
    no_conversation = event("sf", "read")
    del no_conversation["conversation_id"]
    good = event("md", "delivered")

    # when they are pushed, the good one last
    relay.push(invalid, unroutable, no_conversation, good)
    relay.wait_settled(4)

    # then each bad one is a dead letter whose error says what is wrong, and the good one went
    letters = {d.event_id: d for d in relay.dead_letters()}
    assert letters[invalid["event_id"]].reason == "invalid"
    assert "status: Must be one of" in letters[invalid["event_id"]].error
    assert "extra_field: Unknown field" in letters[invalid["event_id"]].error
    assert letters[unroutable["event_id"]].reason == "unroutable"
    assert "unknown target 'nowhere'" in letters[unroutable["event_id"]].error
    assert letters[no_conversation["event_id"]].reason == "invalid"
    assert "conversation_id" in letters[no_conversation["event_id"]].error
    assert all(d.attempts == 0 and d.event for d in letters.values())
    assert relay.counts("md")["delivered"] == 1


def test_push_reports_non_json_lines_and_dead_letters_them(relay: Relay) -> None:
    # given input with a line that is not JSON
    good = event("md", "sent")

    # when it is pushed
    result = relay.push(good, "{not json", good)

    # then the line number is reported, the line is kept as an invalid dead letter, exit 1
    assert result.returncode == 1
    assert "line 2 is not JSON" in result.stderr
    assert "queued 2 event(s)" in result.stdout
    [letter] = relay.dead_letters()
    assert (letter.reason, letter.event, letter.attempts) == ("invalid", "{not json", 0)


def test_worker_refuses_to_start_on_a_bad_config_listing_every_problem(relay: Relay) -> None:
    # given a config with several problems
    bad = relay.tmp / "bad.toml"
    bad.write_text(
        '[targets.x]\nkind = "salesforce"\nbase_url = "ftp://nowhere"\n'
        'auth = { type = "bearer", token = "${UNSET_TOKEN_VAR}" }\n'
        "[retry]\nmax_attempts = -1\n"
    )
    env = {**relay.env, "RELAY_CONFIG": str(bad)}

    # when a worker starts with it
    result = subprocess.run(
        worker_argv(relay.env["RELAY_QUEUE"], "refused"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then it exits non-zero with one line per problem
    assert result.returncode != 0
    for fragment in (
        "UNSET_TOKEN_VAR is not set",
        "base_url: must be an http(s) URL",
        "org_id: required",
        "authorization_context: required",
        "retry.max_attempts: must be a positive number",
    ):
        assert fragment in result.stderr, result.stderr


def test_check_config_lists_problems_and_passes_a_good_file(relay: Relay) -> None:
    # given the harness's good config and a bad one
    bad = relay.tmp / "bad.toml"
    bad.write_text('[targets.y]\nkind = "pager"\n')

    # when both are checked
    good_result = relay.cli("check-config")
    relay.env["RELAY_CONFIG"] = str(bad)
    bad_result = relay.cli("check-config")

    # then the good one passes without printing secrets and the bad one fails with reasons
    assert good_result.returncode == 0, good_result.stderr
    assert "sf-test-token" not in good_result.stdout
    assert bad_result.returncode == 1
    assert "targets.y.kind: must be one of medallia, salesforce" in bad_result.stderr


def test_unroutable_events_do_not_wait_for_a_retry(relay: Relay) -> None:
    # given a worker
    relay.start_worker()

    # when an event for an unknown target is pushed
    relay.push(event("ghost", "sent"))

    # then it is dead-lettered at once, with no attempt made
    wait_for(lambda: len(relay.dead_letters()) == 1, 20, "the dead letter")
    assert relay.retries_waiting() == 0
