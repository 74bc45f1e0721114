"""Faults: failing, slowing, dropping or replacing the sandbox's answers."""

from __future__ import annotations

import time

import pytest
import requests

from tests.dev.sandbox.builders import (
    MEDALLIA,
    ack_body,
    interaction_body,
    medallia_body,
    medallia_headers,
    post_ack,
    post_interaction,
    post_json,
    sf_headers,
)
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(30)


def test_fault_answers_503_with_retry_after_for_its_times_then_normally(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(api="salesforce", status=503, retry_after="7", times=2))

    answers = [post_ack(sandbox.url, sf_headers(), ack_body()) for _ in range(3)]

    assert [r.status_code for r in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].json()["success"] is False and answers[0].json()["code"] == 503
    assert "Retry-After" not in answers[2].headers
    assert [r["fault"] for r in sandbox.requests()] == [True, True, False]


def test_fault_with_match_only_hits_matching_bodies(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(api="medallia", status=500, match='"undelivered"', times=0))

    hit = post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body("undelivered"))
    missed = post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body("sent"))

    assert hit.status_code == 500
    assert hit.json()["error"] == "Internal Server Error"
    assert missed.status_code == 200


def test_fault_for_another_api_does_not_apply(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(api="medallia", status=500))

    response = post_interaction(sandbox.url, sf_headers(), interaction_body())

    assert response.status_code == 202


def test_drop_fault_closes_the_connection_without_an_answer(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(drop=True))

    with pytest.raises(requests.ConnectionError):
        post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body())

    assert sandbox.requests()[0]["status"] == 0
    assert post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body()).ok


def test_delay_fault_slows_the_answer(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(delay=0.3))

    started = time.monotonic()
    response = post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body())

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fault_body_and_content_type_replace_the_answer(sandbox: Sandbox) -> None:
    body = '{"success": false, "code": 10019, "message": "read-only"}'
    sandbox.add_fault(Fault(status=200, body=body, content_type="application/json"))

    response = post_interaction(sandbox.url, sf_headers(), interaction_body())

    assert response.status_code == 200
    assert response.json()["code"] == 10019
