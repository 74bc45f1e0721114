"""The operator's CLI against a real Redis and worker: status, retries, dead letters, push."""

from __future__ import annotations

import json

import pytest

from tests.support.harness import Relay, event, wait_for
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(120)
RECIPIENT = "+4915112345678"


@pytest.fixture
def busy_relay(relay: Relay, sandbox: Sandbox) -> Relay:
    """A relay with one delivered event, one dead letter and one parked retry."""
    sandbox.add_fault(
        Fault(api="medallia", status=503, times=0, retry_after="60", match="m-parked")
    )
    relay.start_worker()
    relay.push(event("md", "delivered"), event("nowhere", "sent"))
    # Pushed apart: pushed together, the two receipts would share a request and its 503.
    wait_for(lambda: relay.counts("md").get("delivered") == 1, 30, "the first delivery")
    relay.push(event("md", "delivered", "m-parked"))
    wait_for(
        lambda: (
            relay.retries_waiting() == 1
            and len(relay.dead_letters()) == 1
            and relay.counts("md").get("delivered") == 1
        ),
        30,
        "the three outcomes",
    )
    return relay


def test_status_reports_queue_retries_and_dead_letters_by_target(busy_relay: Relay) -> None:
    # when the operator asks for the status, for scripts and for people
    as_json = json.loads(busy_relay.cli("status", "--json").stdout)
    as_text = busy_relay.cli("status").stdout

    # then both tell the same story by target
    assert as_json["queue"]["depth"] == 0
    assert as_json["retries_waiting"] == {"md": 1}
    assert as_json["dead_letters"] == {"nowhere": 1}
    assert as_json["outcomes"]["md"] == {"delivered": 1, "retried": 1}
    md_row = next(line for line in as_text.splitlines() if line.startswith("md "))
    assert md_row.split()[:3] == ["md", "1", "0"]


def test_retries_list_and_show_give_the_attempt_history(busy_relay: Relay) -> None:
    # when the operator lists parked retries and opens one
    table = busy_relay.cli("retries", "list").stdout
    [record] = json.loads(busy_relay.cli("retries", "list", "--json").stdout)
    shown = busy_relay.cli("retries", "show", record["id"])

    # then each shows the attempts so far, and the table masks the recipient
    assert RECIPIENT not in table and "+4**********78" in table
    assert [(h["attempt"], h["status"]) for h in record["history"]] == [(1, 503)]
    assert shown.returncode == 0
    assert "attempt 1 at" in shown.stdout and "-> 503" in shown.stdout
    assert busy_relay.cli("retries", "show", "nope").returncode == 1


def test_dlq_show_filters_and_purge(busy_relay: Relay) -> None:
    # given the one dead letter
    [letter] = json.loads(busy_relay.cli("dlq", "list", "--json").stdout)

    # when it is shown, filtered and purged
    shown = busy_relay.cli("dlq", "show", letter["id"])
    by_reason = json.loads(busy_relay.cli("dlq", "list", "--reason", "rejected", "--json").stdout)
    purged = busy_relay.cli("dlq", "purge", letter["id"])

    # then the record reads well, filters work, and it is gone
    assert "unroutable" in shown.stdout and RECIPIENT not in shown.stdout
    assert by_reason == []
    assert purged.returncode == 0 and "purged 1" in purged.stdout
    assert busy_relay.dead_letters() == []


@pytest.mark.parametrize(
    "args",
    [
        ("dlq", "replay"),
        ("dlq", "purge"),
        ("dlq", "replay", "x", "--all"),
        ("dlq", "list", "--reason", "lost"),
        ("push", "/no/such/file"),
    ],
    ids=["replay-nothing", "purge-nothing", "ids-and-all", "unknown-reason", "missing-file"],
)
def test_usage_errors_exit_2(relay: Relay, args: tuple[str, ...]) -> None:
    # when a command is used wrongly, then it says so and exits 2
    result = relay.cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Error" in result.stderr


def test_an_oversized_line_is_refused_and_not_stored_whole(relay: Relay) -> None:
    # given a line far over the 64 KiB default limit
    huge = json.dumps(event("md", "sent", recipient="x" * 200_000))

    # when it is pushed
    result = relay.push(huge)

    # then it is refused with its size, and only a short prefix is kept
    assert result.returncode == 1
    assert "over the 65536-byte limit" in result.stderr
    [letter] = relay.dead_letters()
    assert letter.reason == "invalid" and len(letter.event) < 2000


def test_help_reads_for_a_newcomer(relay: Relay) -> None:
    for command in ((), ("dlq",), ("retries",), ("push",), ("status",)):
        result = relay.cli(*command, "--help")
        assert result.returncode == 0 and "Usage:" in result.stdout


def test_check_config_names_each_unset_variable_once_and_nothing_else(relay: Relay) -> None:
    # given a targets file whose secrets and URLs come from variables that are not set
    config = relay.tmp / "unset.toml"
    config.write_text(
        '[targets.md]\nkind = "medallia"\nbase_url = "https://${MD_HOST}"\n'
        'channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"\n'
        'auth = { type = "client_credentials", token_url = "${MD_TOKEN_URL}", '
        'client_id = "${MD_ID}", client_secret = "${MD_SECRET}" }\n'
        '[targets.sf]\nkind = "salesforce"\nbase_url = "https://sf.example.com"\n'
        'org_id = "00D5g000004xyzA"\nauthorization_context = "P"\n'
        'auth = { type = "bearer", token = "${SF_UNSET}" }\n'
    )
    relay.env["RELAY_CONFIG"] = str(config)

    # when the operator checks it
    result = relay.cli("check-config")

    # then each variable is named once, where it is used, and nothing is said of its value
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert problems == [
        f"  - {where}: environment variable {name} is not set"
        for where, name in [
            ("targets.md.base_url", "MD_HOST"),
            ("targets.md.auth.token_url", "MD_TOKEN_URL"),
            ("targets.md.auth.client_id", "MD_ID"),
            ("targets.md.auth.client_secret", "MD_SECRET"),
            ("targets.sf.auth.token", "SF_UNSET"),
        ]
    ]


def test_dlq_show_keeps_epoch_times_and_masks_the_recipient(relay: Relay) -> None:
    # given a dead letter of an event dated in epoch seconds
    relay.start_worker()
    relay.push(event("nowhere", "sent", event_id="ev-epoch", occurred_at=1764720000))
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the dead letter")
    [letter] = relay.dead_letters()

    # when the operator shows it
    shown = relay.cli("dlq", "show", letter.id).stdout

    # then the time reads whole and the recipient does not
    assert '"occurred_at": 1764720000' in shown
    assert RECIPIENT not in shown and "+4**********78" in shown


def test_listings_cut_long_ids_visibly_and_print_them_whole_with_wide(relay: Relay) -> None:
    # given a dead letter whose event id is longer than the table's column
    long_id = "ev-" + "0123456789" * 5
    relay.start_worker()
    relay.push(event("nowhere", "sent", event_id=long_id))
    wait_for(lambda: len(relay.dead_letters()) == 1, 30, "the dead letter")

    # when the operator lists it, narrow, wide and as JSON
    narrow = relay.cli("dlq", "list").stdout
    wide = relay.cli("dlq", "list", "--wide").stdout
    [record] = json.loads(relay.cli("dlq", "list", "--json").stdout)

    # then the cut id says it is cut, the whole one is there to copy, and it traces
    assert long_id not in narrow and long_id[:18] + "~" in narrow
    assert long_id in wide and record["event_id"] == long_id
    assert relay.cli("trace", long_id).returncode == 0
