"""Faults that spoil the answer itself: trickling forever, redirecting, truncating."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.dev.sandbox.builders import (
    MEDALLIA,
    ack_body,
    interaction_body,
    medallia_body,
    medallia_headers,
    post_ack,
    post_json,
    sf_headers,
)
from worker.dev.sandbox import Fault, Sandbox
from worker.dev.sandbox.wire import TRICKLE_LENGTH

pytestmark = pytest.mark.timeout(30)


def _open_medallia(url: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """POST a valid Medallia request with http.client and give the response, headers read."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    body = json.dumps(medallia_body()).encode()
    connection.request("POST", MEDALLIA, body=body, headers=medallia_headers())
    return connection, connection.getresponse()


def _handler_threads() -> int:
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def _post_medallia_unfollowed(url: str) -> requests.Response:
    data = json.dumps(medallia_body())
    return requests.post(
        url + MEDALLIA, headers=medallia_headers(), data=data, timeout=5, allow_redirects=False
    )


@pytest.fixture
def own_sandbox() -> Iterator[Sandbox]:
    """A sandbox of this test's own, for tests that stop it or count its threads."""
    sandbox = Sandbox()
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_trickle_sends_headers_then_one_byte_at_a_time(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(api="medallia", trickle=0.1))

    connection, response = _open_medallia(sandbox.url)
    started = time.monotonic()
    received = b"".join(response.read(1) for _ in range(4))
    elapsed = time.monotonic() - started
    connection.close()

    assert response.status == 200
    assert response.getheader("Content-Length") == str(TRICKLE_LENGTH)
    assert received == b"OK  "  # the vendor's answer, then spaces, never finished
    assert 0.25 <= elapsed < 2.0
    assert sandbox.requests()[0]["fault"] is True


def test_trickle_ends_when_the_client_goes_away(own_sandbox: Sandbox) -> None:
    before = _handler_threads()
    own_sandbox.add_fault(Fault(trickle=0.05, times=0))

    connection, response = _open_medallia(own_sandbox.url)
    response.read(2)
    connection.close()
    response.close()

    deadline = time.monotonic() + 5
    while _handler_threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _handler_threads() <= before


def test_trickle_ends_when_the_sandbox_stops(own_sandbox: Sandbox) -> None:
    own_sandbox.add_fault(Fault(trickle=5.0, status=503))
    connection, response = _open_medallia(own_sandbox.url)
    response.read(1)

    started = time.monotonic()
    own_sandbox.stop()
    stopped_in = time.monotonic() - started

    assert stopped_in < 2.0
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    connection.close()


def test_redirect_answers_its_status_with_a_location_and_nothing_follows(
    sandbox: Sandbox,
) -> None:
    elsewhere = sandbox.url + "/moved/salesforce/api/v1/acknowledgement"
    sandbox.add_fault(Fault(api="salesforce", status=302, redirect=elsewhere))

    response = requests.post(
        sandbox.url + "/salesforce/api/v1/acknowledgement",
        headers={**sf_headers(), "Content-Type": "application/json"},
        data=json.dumps(ack_body()),
        timeout=5,
        allow_redirects=False,
    )

    assert response.status_code == 302
    assert response.headers["Location"] == elsewhere
    assert response.headers["Content-Type"] == "text/html"
    assert "<html>" in response.text and elsewhere in response.text
    assert [r["path"] for r in sandbox.requests()] == ["/salesforce/api/v1/acknowledgement"]


def test_redirect_keeps_a_body_it_is_given(sandbox: Sandbox) -> None:
    sandbox.add_fault(
        Fault(status=308, redirect="https://elsewhere.test/x", body="{}", content_type="a/b")
    )

    response = _post_medallia_unfollowed(sandbox.url)

    assert response.status_code == 308
    assert response.headers["Location"] == "https://elsewhere.test/x"
    assert (response.headers["Content-Type"], response.text) == ("a/b", "{}")


def test_truncate_announces_more_than_it_sends_then_closes(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(api="salesforce", status=202, truncate=True))

    connection, response = _open_sf_interaction(sandbox.url)
    announced = int(response.getheader("Content-Length") or 0)
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    connection.close()

    assert response.status == 202
    assert 0 < len(cut.value.partial) < announced
    assert post_ack(sandbox.url, sf_headers(), ack_body()).status_code == 200


def test_truncated_answer_is_a_broken_body_for_requests(sandbox: Sandbox) -> None:
    sandbox.add_fault(Fault(api="medallia", truncate=True))

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body())

    assert sandbox.requests()[0]["status"] == 200


def _open_sf_interaction(url: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    prepared = requests.Request(
        "POST",
        url + "/salesforce/api/v1/interactions",
        headers=sf_headers(),
        files={"json": (None, json.dumps(interaction_body()), "application/json")},
    ).prepare()
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    body = prepared.body if isinstance(prepared.body, bytes) else str(prepared.body).encode()
    connection.request("POST", prepared.path_url, body=body, headers=dict(prepared.headers))
    return connection, connection.getresponse()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"trickle": -1.0}, "trickle must be 0 or more"),
        ({"trickle": 1.0, "drop": True}, "drop and trickle cannot be combined"),
        ({"trickle": 1.0, "truncate": True}, "trickle and truncate cannot be combined"),
        ({"drop": True, "truncate": True}, "drop and truncate cannot be combined"),
        ({"redirect": "http://x.test/"}, "redirect needs a status of 301, 302"),
        ({"redirect": "http://x.test/", "status": 200}, "redirect needs a status"),
        ({"redirect": "http://x\r\nX-Evil: 1", "status": 302}, "one-line URL"),
        ({"redirect": " ", "status": 302}, "one-line URL"),
        ({"redirect": "/x", "status": 302, "trickle": 1.0}, "redirect and trickle"),
    ],
)
def test_inconsistent_answer_faults_are_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Fault(**fields)
    with pytest.raises(ValueError, match=problem):
        Fault.from_json(fields)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"trickle": "1"}, "trickle must be int or float"),
        ({"trickle": True}, "trickle must be int or float"),
        ({"truncate": 1}, "truncate must be bool"),
        ({"redirect": 302, "status": 302}, "redirect must be str or null"),
    ],
)
def test_answer_fault_fields_of_the_wrong_type_are_refused(
    sandbox: Sandbox, data: dict[str, Any], problem: str
) -> None:
    response = requests.post(sandbox.url + "/_sandbox/faults", json=data, timeout=5)

    assert response.status_code == 400
    assert problem in response.json()["error"]


def test_answer_faults_round_trip_through_json_and_old_faults_still_load() -> None:
    fault = Fault.from_json({"api": "salesforce", "trickle": 1, "times": 0})
    old = Fault.from_json({"api": "medallia", "status": 503, "retry_after": "5"})

    assert fault.trickle == 1.0 and isinstance(fault.trickle, float)
    assert Fault.from_json(fault.to_json()) == fault
    assert (old.trickle, old.redirect, old.truncate) == (0.0, None, False)
    assert Fault.from_json({"redirect": None, "status": 302}).redirect is None


def test_answer_faults_can_be_added_over_http(sandbox: Sandbox) -> None:
    control = sandbox.url + "/_sandbox/faults"
    fault = {"api": "medallia", "status": 301, "redirect": "https://elsewhere.test/"}

    added = requests.post(control, json=fault, timeout=5)
    answered = _post_medallia_unfollowed(sandbox.url)

    assert added.status_code == 201 and added.json()["added"]["redirect"] == fault["redirect"]
    assert answered.status_code == 301
    assert answered.headers["Location"] == "https://elsewhere.test/"
