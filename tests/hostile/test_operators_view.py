"""What a hostile producer can no longer do to operators' tools: forge log lines, flood
Sentry, make counters and metric labels grow without bound, or show a recipient in the CLI."""

from __future__ import annotations

import time

import pytest
import redis

from tests.support.harness import Relay, event, wait_for
from tests.support.sentry_standin import SentryStandIn
from worker.dev.sandbox import Sandbox

pytestmark = pytest.mark.timeout(90)
PHONE = "+4915112345678"


def test_a_newline_in_an_event_id_cannot_forge_a_log_line(relay: Relay, sandbox: Sandbox) -> None:
    # given a worker logging text lines, and an event_id carrying a forged log line
    relay.start_worker()
    forged = "ev-1\n[2026-01-01 00:00:00: WARNING/relay.attempt] forged"

    # when the event is delivered
    relay.push(event("md", "delivered", event_id=forged))
    relay.wait_settled(1)
    relay.stop_all()

    # then the id shows escaped on its attempt's line, and no line starts with the forgery
    lines = (relay.tmp / "w-0.log").read_text().splitlines()
    assert any("event_id=ev-1\\n[2026" in line for line in lines)
    assert not any(line.startswith("[2026-01-01 00:00:00: WARNING") for line in lines)


def test_unknown_target_names_share_one_counter(
    relay: Relay, sandbox: Sandbox, redis_client: redis.Redis
) -> None:
    # given a worker, and 30 events naming 30 different unknown targets
    relay.start_worker()
    relay.push(*(event(f"nowhere-{i}", "sent") for i in range(30)))

    # when they are dead-lettered
    relay.wait_settled(30)

    # then they are counted under one label, and the dead letters keep the names they gave
    prefix = relay.env["RELAY_KEY_PREFIX"]
    stats = sorted(redis_client.scan_iter(match=f"{prefix}:stats:*"))
    assert stats == [f"{prefix}:stats:(unknown)"]
    assert relay.counts("(unknown)") == {"dead:unroutable": 30}
    assert {d.target for d in relay.dead_letters()} == {f"nowhere-{i}" for i in range(30)}


def test_sentry_hears_of_a_flood_of_dead_letters_a_few_times_a_minute(
    relay: Relay, sandbox: Sandbox, sentry: SentryStandIn
) -> None:
    # given a worker reporting to a local Sentry stand-in
    relay.start_worker()

    # when 40 invalid events become dead letters at once
    relay.push(*(event("md", "lost") for _ in range(40)))
    relay.wait_settled(40)
    time.sleep(2)  # let the SDK send what it will

    # then Sentry got at most ten of them, the last saying more were held back
    reports = sentry.events()
    assert 1 <= len(reports) <= 10


def test_the_cli_masks_recipients_in_errors_and_raw_lines(relay: Relay) -> None:
    # given a line that is not JSON but holds a phone number
    relay.push(f"call {PHONE} now")
    wait_for(lambda: len(relay.dead_letters()) == 1, 10, "the dead letter")
    [letter] = relay.dead_letters()

    # when the operator lists and shows dead letters
    listing = relay.cli("dlq", "list").stdout
    shown = relay.cli("dlq", "show", letter.id).stdout

    # then the number is masked in both (the --json record keeps the line whole for replay)
    assert PHONE not in listing and PHONE not in shown
    assert PHONE in relay.cli("dlq", "show", letter.id, "--json").stdout
