"""The /_sandbox control endpoints: faults, recorded requests and health."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.dev.sandbox.builders import (
    MEDALLIA,
    ack_body,
    medallia_body,
    medallia_headers,
    post_ack,
    post_json,
    sf_headers,
)
from worker.dev.sandbox import Fault, Sandbox

pytestmark = pytest.mark.timeout(30)


def test_faults_can_be_added_listed_and_cleared_over_http(sandbox: Sandbox) -> None:
    control = sandbox.url + "/_sandbox/faults"

    added = requests.post(control, json={"status": 429, "retry_after": "1", "times": 0}, timeout=5)
    listed = requests.get(control, timeout=5).json()
    refused = post_ack(sandbox.url, sf_headers(), ack_body())
    cleared = requests.delete(control, timeout=5)

    assert added.status_code == 201
    assert listed[0]["status"] == 429 and listed[0]["left"] is None
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert cleared.json() == {"cleared": 1}
    assert post_ack(sandbox.url, sf_headers(), ack_body()).status_code == 200


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ({"status": 503, "colour": "red"}, "unknown key 'colour'"),
        ({"status": "503"}, "status must be int"),
        ({"drop": 1}, "drop must be bool"),
        ({"api": "twilio"}, "api must be one of"),
        ({"times": -1}, "times must be 0"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_fault_is_refused_with_400(sandbox: Sandbox, fault: Any, problem: str) -> None:
    response = requests.post(sandbox.url + "/_sandbox/faults", json=fault, timeout=5)

    assert response.status_code == 400
    assert problem in response.json()["error"]
    with pytest.raises(ValueError, match=r"invalid fault|must be a JSON object"):
        Fault.from_json(fault)


def test_requests_can_be_listed_and_cleared_over_http(sandbox: Sandbox) -> None:
    post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body())
    control = sandbox.url + "/_sandbox/requests"

    listed = requests.get(control, timeout=5).json()
    cleared = requests.delete(control, timeout=5)

    assert [r["api"] for r in listed] == ["medallia"]
    assert listed[0]["headers"]["authorization"] == "***"
    assert cleared.status_code == 200 and sandbox.requests() == []


def test_health_and_unknown_paths(sandbox: Sandbox) -> None:
    health = requests.get(sandbox.url + "/_sandbox/health", timeout=5)
    unknown = requests.post(sandbox.url + "/salesforce/api/v2/interactions", timeout=5)

    assert health.json() == {"ok": True}
    assert unknown.status_code == 404
    assert "POST /salesforce/api/v1/interactions" in unknown.json()["paths"]
    assert sandbox.requests()[0]["api"] == "unknown"


def test_keep_alive_connection_serves_several_requests(sandbox: Sandbox) -> None:
    with requests.Session() as session:
        for _ in range(3):
            response = session.get(sandbox.url + "/_sandbox/health", timeout=5)
            assert response.json() == {"ok": True}
