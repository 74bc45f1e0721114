"""`relay trace` by a provider's message id and by a target's message id, against a real
ingress, worker and Redis; and complete times in every line."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tasks.upstream.events import event_id
from tasks.upstream.receipts import Receipt, ReceiptError
from tests.support.harness import Relay, wait_for
from tests.support.ingress import INGRESS_CONFIG, SECRETS, Ingress, md_reference
from worker.dev.callbacks import Message
from worker.dev.sandbox import Sandbox
from worker.settings import get_settings

pytestmark = pytest.mark.timeout(120)
WHOLE_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@dataclass
class Traced:
    relay: Relay
    sent_and_failed: str
    """A WhatsApp message with a record, reported sent then failed (code 131047)."""
    waiting: str
    """A WhatsApp message reported delivered, with no record yet."""
    target_message: str


def _receipt_id(pmid: str, status: str, code: int | None = None) -> str:
    error = ReceiptError(code, "x") if code is not None else None
    return event_id("wa", Receipt("whatsapp", pmid, status, status, error=error))


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, sandbox_server: Sandbox
) -> Iterator[Traced]:
    patch = pytest.MonkeyPatch()
    relay = Relay(
        tmp_path_factory.mktemp("trace"), redis_url, sandbox_server.url, patch, INGRESS_CONFIG
    )
    relay.env.update(SECRETS)
    tag = uuid.uuid4().hex[:8]
    case = Traced(relay, f"wamid.{tag}.1", f"wamid.{tag}.2", f"m-{tag}")
    try:
        relay.start_worker()
        ingress = Ingress(relay)
        record = {"source": "wa", "provider_message_id": case.sent_and_failed}
        assert ingress.correlate({**record, **md_reference(case.target_message)})[0] == 200
        assert ingress.post("wa", Message(case.sent_and_failed, "sent"))[0] == 200
        failed = Message(case.sent_and_failed, "failed", error_code="131047")
        assert ingress.post("wa", failed)[0] == 200
        assert ingress.post("wa", Message(case.waiting, "delivered"))[0] == 200
        wait_for(lambda: relay.counts("md").get("delivered") == 2, 30, "two deliveries")
        yield case
    finally:
        relay.stop_all()
        patch.undo()
        get_settings.cache_clear()


def test_trace_by_provider_message_id_finds_every_status_it_had(traced: Traced) -> None:
    # when the operator traces the provider's message id through its source
    text = traced.relay.cli("trace", "--source", "wa", traced.sent_and_failed)
    as_json = json.loads(
        traced.relay.cli("trace", "--source", "wa", traced.sent_and_failed, "--json").stdout
    )

    # then both events made of it are found delivered, the failure's code worked out
    wanted = {
        _receipt_id(traced.sent_and_failed, "sent"),
        _receipt_id(traced.sent_and_failed, "failed", 131047),
    }
    assert text.returncode == 0, text.stderr
    assert {(s["where"], s["event_id"]) for s in as_json["found"]} == {
        ("delivered", eid) for eid in wanted
    }
    assert as_json["provider_message_id"] == traced.sent_and_failed
    for eid in wanted:
        assert re.search(rf"{eid}: delivered at {WHOLE_TIME} for md: message id", text.stdout)


def test_trace_by_provider_message_id_finds_a_receipt_waiting_for_its_record(
    traced: Traced,
) -> None:
    shown = traced.relay.cli("trace", "--source", "wa", traced.waiting)
    assert shown.returncode == 0
    assert re.search(rf"waiting for its correlation record until {WHOLE_TIME}", shown.stdout)
    assert _receipt_id(traced.waiting, "delivered") in shown.stdout


def test_trace_by_target_message_id_lists_each_of_its_events(traced: Traced) -> None:
    shown = traced.relay.cli("trace", "--target", "md", "--message-id", traced.target_message)
    assert shown.returncode == 0
    assert len(re.findall(rf"delivered at {WHOLE_TIME} for md", shown.stdout)) == 2


def test_a_provider_id_without_its_source_says_how_to_find_it(traced: Traced) -> None:
    shown = traced.relay.cli("trace", traced.sent_and_failed)
    assert shown.returncode == 1 and "--source" in shown.stderr


@pytest.mark.parametrize(
    "args",
    [("--source", "wa"), ("--message-id", "m"), ("--target", "md"), ()],
    ids=["source-without-id", "message-id-without-target", "target-alone", "nothing"],
)
def test_trace_usage_errors_exit_2(traced: Traced, args: tuple[str, ...]) -> None:
    assert traced.relay.cli("trace", *args).returncode == 2
