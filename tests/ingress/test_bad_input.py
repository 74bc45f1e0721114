"""Hostile and odd callbacks each get the contract's answer, and nothing that authenticated
is lost (real ingress, worker, Redis and sandbox)."""

from __future__ import annotations

import hashlib
import json
import time

from bench.flood import head
from tasks.upstream.signatures import meta_signature
from tests.ingress.conftest import Stack, mid
from tests.support.edge import connect, read_answer
from tests.support.harness import wait_for
from tests.support.ingress import SECRETS, md_reference, sf_reference
from worker.dev.callbacks import Callback, Message
from worker.stores.counters import Counters
from worker.stores.deadletters import DeadLetterStore


def letters_with(text: str) -> list[object]:
    return [d for d in DeadLetterStore().iter() if text in json.dumps(d.event)]


def test_unknown_sources_are_404_and_other_methods_405(stack: Stack) -> None:
    assert stack.ingress.request("POST", "/v1/receipts/nobody", {}, b"x")[0] == 404
    assert stack.ingress.request("PUT", "/v1/receipts/tw", {}, b"x")[0] == 405
    assert stack.ingress.get("/nowhere")[0] == 404


def test_bodies_over_the_limit_are_413_before_they_are_read(stack: Stack) -> None:
    # Announce a body over the cap and send only its first KiB: the answer comes without the
    # rest. (Writing the whole body first, as a plain client does, races the refusal: the
    # ingress closes after answering and the client's write breaks before it reads the 413.)
    path = "/v1/receipts/ib?token=" + SECRETS["IB_TOKEN"]
    sock = connect(stack.ingress)
    try:
        sock.sendall(head("POST", path, {}, 1024 * 1024 + 1) + b"x" * 1024)
        answer = read_answer(sock, timeout=10)
    finally:
        sock.close()
    assert answer is not None and answer[0] == 413


def test_a_valid_signature_over_a_truncated_body_is_refused(stack: Stack) -> None:
    m = mid("trunc")
    for source in ("wa", "vg", "tw"):
        callback = stack.ingress.callback(
            source, Message("X" + m, "delivered", reference=md_reference(m))
        )
        status, _ = stack.ingress.request(
            "POST", callback.url, callback.headers, callback.body[:-7]
        )
        assert status == 401, source
    time.sleep(0.5)
    assert not letters_with(m) and not stack.accepted(m)


def test_authenticated_bytes_that_are_not_utf8_are_kept_as_an_invalid_dead_letter(
    stack: Stack,
) -> None:
    body = b'{"results": [{"messageId": "\xff\xfe' + mid().encode() + b'"}]}'
    headers = {"Content-Type": "application/json"}
    status, answer = stack.ingress.request(
        "POST", "/v1/receipts/ib?token=" + SECRETS["IB_TOKEN"], headers, body
    )
    assert status == 200
    letter = DeadLetterStore().get(json.loads(answer)["invalid"])
    assert letter is not None and letter.reason == "invalid"
    assert "not UTF-8" in letter.error and "body_base64" in letter.event


def test_deeply_nested_json_that_authenticated_is_kept_as_an_invalid_dead_letter(
    stack: Stack,
) -> None:
    body = b"[" * 50_000 + b"]" * 50_000
    callback = Callback(
        "POST",
        f"{stack.ingress.url}/v1/receipts/wa",
        {"X-Hub-Signature-256": meta_signature(SECRETS["WA_SECRET"], body)},
        body,
    )
    status, answer = stack.ingress.send(callback)
    assert status == 200
    letter = DeadLetterStore().get(json.loads(answer)["invalid"])
    assert letter is not None and "nested too deeply" in letter.error
    assert letter.event["body"] == body[:4096].decode()  # a prefix, its size and hash
    assert letter.event["body_bytes"] == len(body)
    assert letter.event["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_statuses_without_a_canonical_meaning_are_200_counted_as_ignored_and_post_nothing(
    stack: Stack,
) -> None:
    m = mid("queued")
    before = Counters(family="receipts").snapshot().get("tw", {}).get("ignored", 0)
    for status in ("queued", "sending", "brand-new-status"):
        answer = stack.ingress.post("tw", Message("SM" + m, status, reference=sf_reference(m)))
        assert answer == (200, {"accepted": 0, "waiting": 0, "ignored": 1})
    assert Counters(family="receipts").snapshot()["tw"]["ignored"] == before + 3
    time.sleep(0.5)
    assert not stack.accepted(m)


def test_a_repeated_callback_is_posted_once(stack: Stack) -> None:
    m = mid("again")
    message = Message("SM" + m, "failed", error_code="30007", reference=sf_reference(m))
    for _ in range(3):
        assert stack.ingress.post("tw", message)[0] == 200
    stack.wait_posted(m)
    wait_for(lambda: stack.relay.counts("sf").get("duplicate", 0) >= 2, 20, "duplicates counted")
    time.sleep(0.5)
    assert len(stack.accepted(m)) == 1


def test_an_older_status_arriving_after_a_newer_one_is_not_posted(stack: Stack) -> None:
    m = mid("order")
    now = int(time.time())
    read = Message(
        "wamid." + m, "read", reference=sf_reference(m, conversation=True), timestamp=now
    )
    stale = Message(
        "wamid." + m, "delivered", reference=sf_reference(m, conversation=True), timestamp=now - 5
    )
    assert stack.ingress.post("wa", read)[0] == 200
    stack.wait_posted(m)
    assert stack.ingress.post("wa", stale)[0] == 200
    wait_for(lambda: stack.relay.counts("sf").get("stale", 0) >= 1, 20, "the stale status counted")
    (request,) = stack.accepted(m)
    assert request["json"]["acknowledgements"][0]["acknowledgementType"] == "Read"
