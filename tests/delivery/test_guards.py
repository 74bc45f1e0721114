"""The bundle rule, with a fault injected into the relay's own code: an unexpected exception
for one event settles that event as a dead letter naming the exception's type (never its
text), and the rest of the bundle is delivered. Real Redis, real sandbox target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.envelope import Envelope
from tasks.targets import TARGET_KINDS
from tests.support.harness import Relay, event, posted_ids
from worker.config import load_config
from worker.delivery.pipeline import Pipeline
from worker.dev.sandbox import Sandbox
from worker.stores.deadletters import DeadLetterStore

pytestmark = pytest.mark.timeout(60)
SECRET_TEXT = "text that names +4915112345678"


@pytest.fixture
def pipeline(relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    for name in ("SF_TOKEN", "MD_TOKEN"):
        monkeypatch.setenv(name, relay.env[name])
    yield Pipeline(load_config(relay.env["RELAY_CONFIG"]))


def test_an_exception_translating_one_event_dead_letters_only_that_event(
    pipeline: Pipeline, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a translator with a bug that one event's message id sets off
    kind = TARGET_KINDS["medallia"]
    translate = kind.translate

    def buggy(event: Any, options: Any) -> Any:
        if "m-bug" in event.message_ids:
            raise RuntimeError(SECRET_TEXT)
        return translate(event, options)

    monkeypatch.setattr(kind, "translate", buggy)
    good = [event("md", "delivered") for _ in range(3)]
    bad = event("md", "delivered", "m-bug")

    # when a bundle holding it is processed
    settled = pipeline.process_bundle([Envelope(e) for e in [good[0], bad, *good[1:]]])

    # then that event is an invalid dead letter naming the type only; the others went out
    assert [s.state for s in settled] == ["done", "dead", "done", "done"]
    [letter] = DeadLetterStore().iter()
    assert letter.reason == "invalid"
    assert letter.error == "internal error translating the event (RuntimeError)"
    assert SECRET_TEXT not in settled[1].summary
    assert sorted(posted_ids(sandbox.requests())) == sorted(e["message_ids"][0] for e in good)


def test_an_exception_settling_one_event_dead_letters_only_that_event(
    pipeline: Pipeline, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bug while settling one event (after it was sent)
    settle = pipeline.settler.settle

    def buggy(job: Any, writes: Any) -> Any:
        if job.event.message_ids == ("m-bug",):
            raise KeyError(SECRET_TEXT)
        return settle(job, writes)

    monkeypatch.setattr(pipeline.settler, "settle", buggy)
    good = [event("sf", "failed") for _ in range(2)]
    bad = event("sf", "failed", "m-bug")

    # when a bundle holding it is processed
    settled = pipeline.process_bundle([Envelope(e) for e in [bad, *good]])

    # then it is a rejected dead letter (it had been sent), the others settled as delivered
    assert [s.state for s in settled] == ["dead", "done", "done"]
    [letter] = DeadLetterStore().iter()
    assert (letter.reason, letter.error) == (
        "rejected",
        "internal error settling the event (KeyError)",
    )
