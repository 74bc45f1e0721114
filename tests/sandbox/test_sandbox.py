"""Behaviour of `relay sandbox`: strict checks, vendor-style answers, recording and faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from worker.sandbox import Fault, Sandbox
from worker.sandbox.salesforce import check_interaction

pytestmark = pytest.mark.timeout(30)

END_USER = "+15550001234"
PAGE = "page_1"
SF_INTERACTIONS = "/salesforce/api/v1/interactions"
SF_ACK = "/salesforce/api/v1/acknowledgement"
MEDALLIA = "/medallia/apis/v0/channels/6f1c2a5e-0000-4000-8000-000000000001/messages"
Mutation = Callable[[dict[str, str], dict[str, Any]], None]


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    sandbox = Sandbox(hub_secret="hub-secret")
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(server: Sandbox) -> Iterator[Sandbox]:
    server.clear_faults()
    server.clear_requests()
    yield server
    server.clear_faults()


def sf_headers() -> dict[str, str]:
    return {
        "Authorization": "Bearer sf-token",
        "OrgId": "00D5g000004xyzA",
        "AuthorizationContext": "Partner1_ChannelDefinition1",
        "RequestId": str(uuid.uuid4()),
    }


def interaction_body() -> dict[str, Any]:
    payload = {
        "id": str(uuid.uuid4()),
        "entryType": "MessageDeliveryFailed",
        "failedConversationEntryIdentifier": "entry-1",
        "recipient": {"subject": END_USER, "role": "EndUser", "appType": "custom"},
        "errorCode": "207",
        "errorMessage": "Unavailable",
    }
    interaction = {
        "timestamp": 1770163786000,
        "interactionType": "EntryInteraction",
        "payload": payload,
    }
    return {"to": "channel-address", "from": END_USER, "interactions": [interaction]}


def ack_body(kind: str = "Delivered", count: int = 1) -> dict[str, Any]:
    ack = {
        "acknowledgementTimestamp": 1770163786000,
        "acknowledgementType": kind,
        "acknowledgedConversationEntryIdentifier": "entry-1",
        "acknowledgmentCreatedConversationEntryIdentifier": str(uuid.uuid4()),
    }
    return {
        "sender": {"appType": "custom", "subject": END_USER, "role": "EndUser"},
        "conversationIdentifier": "conversation-1",
        "acknowledgements": [dict(ack) for _ in range(count)],
    }


def medallia_headers() -> dict[str, str]:
    return {
        "accept": "text/plain",
        "authorization": "Bearer medallia-token",
        "content-type": "application/json",
    }


def medallia_body(status: str = "delivered") -> dict[str, Any]:
    item: dict[str, Any] = {
        "sender": {"id": END_USER},
        "recipient": {"id": PAGE},
        "delivery": {"mids": ["msg_1", "msg_2"], "status": status},
    }
    if status in ("failed", "undelivered"):
        item["error"] = {"code": 207, "name": "Unavailable", "message": "Unable to deliver"}
    return {"object": "page", "entry": [{"id": PAGE, "time": 1770163786, "messaging": [item]}]}


def post_interaction(
    url: str, headers: dict[str, str], body: dict[str, Any], part: str = "json"
) -> requests.Response:
    files = {part: (None, json.dumps(body), "application/json")}
    return requests.post(url + SF_INTERACTIONS, headers=headers, files=files, timeout=5)


def post_json(url: str, path: str, headers: dict[str, str], body: Any) -> requests.Response:
    data = json.dumps(body).encode()
    return requests.post(url + path, headers=headers, data=data, timeout=5)


def post_ack(url: str, headers: dict[str, str], body: dict[str, Any]) -> requests.Response:
    return post_json(url, SF_ACK, {**headers, "Content-Type": "application/json"}, body)


# Valid requests are accepted and answered like the vendor.


def test_valid_interaction_is_accepted_with_202(sandbox: Sandbox) -> None:
    body = interaction_body()

    response = post_interaction(sandbox.url, sf_headers(), body)

    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["id"] == body["interactions"][0]["payload"]["id"]
    assert answer["workItemIds"] == [] and answer["success"] is True
    assert uuid.UUID(answer["conversationIdentifier"]).version == 4
    [record] = sandbox.requests()
    assert record["valid"] and record["json"] == body and record["status"] == 202
    assert record["headers"]["Authorization"] == "***"


@pytest.mark.parametrize(("kind", "count"), [("Delivered", 1), ("Read", 1), ("Delivered", 25)])
def test_valid_acknowledgement_is_accepted(sandbox: Sandbox, kind: str, count: int) -> None:
    response = post_ack(sandbox.url, sf_headers(), ack_body(kind, count))

    assert response.status_code == 200
    assert response.json() == {"success": True}


@pytest.mark.parametrize("status", ["sent", "delivered", "failed", "undelivered"])
def test_valid_medallia_receipt_is_answered_ok(sandbox: Sandbox, status: str) -> None:
    response = post_json(sandbox.url, MEDALLIA, medallia_headers(), medallia_body(status))

    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert sandbox.requests()[0]["endpoint"] == "messages"


def test_medallia_accepts_a_hub_signature_instead_of_a_bearer(sandbox: Sandbox) -> None:
    raw = json.dumps(medallia_body()).encode()
    signature = hmac.new(b"hub-secret", raw, hashlib.sha1).hexdigest()
    headers = {k: v for k, v in medallia_headers().items() if k != "authorization"}

    response = requests.post(
        sandbox.url + MEDALLIA,
        headers={**headers, "X-Hub-Signature": f"sha1={signature}"},
        data=raw,
        timeout=5,
    )

    assert response.status_code == 200
    assert sandbox.requests()[0]["headers"]["X-Hub-Signature"] == "***"


# Invalid requests: each case mutates a valid request and names the expected problem.


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(headers: dict[str, str], body: dict[str, Any]) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _header(name: str, value: str | None) -> Mutation:
    def mutate(headers: dict[str, str], body: dict[str, Any]) -> None:
        if value is None:
            del headers[name]
        else:
            headers[name] = value

    return mutate


PAYLOAD = ["interactions", 0, "payload"]
ITEM = ["entry", 0, "messaging", 0]

INTERACTION_CASES = [
    ("timestamp bool", _set(["interactions", 0, "timestamp"], True), "got a boolean true"),
    ("timestamp s", _set(["interactions", 0, "timestamp"], 1770163786), "in epoch seconds"),
    ("errorCode int", _set([*PAYLOAD, "errorCode"], 207), "errorCode must be a non-empty str"),
    (
        "two interactions",
        lambda h, b: b["interactions"].append(b["interactions"][0]),
        "exactly one interaction, got 2",
    ),
    ("routingAttributes", _set(["routingAttributes"], {}), "routingAttributes is not allowed"),
    ("missing OrgId", _header("OrgId", None), "header OrgId must be exactly 15"),
    ("bad RequestId", _header("RequestId", "42"), "header RequestId must be a UUID"),
    ("role", _set([*PAYLOAD, "recipient", "role"], "Agent"), "recipient.role must be"),
    ("subject", _set([*PAYLOAD, "recipient", "subject"], "x"), "subject must equal from"),
    ("payload id", _set([*PAYLOAD, "id"], "abc"), "payload.id must be a UUID"),
]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [case[1:] for case in INTERACTION_CASES],
    ids=[case[0] for case in INTERACTION_CASES],
)
def test_invalid_interaction_is_refused(sandbox: Sandbox, mutate: Mutation, problem: str) -> None:
    headers, body = sf_headers(), interaction_body()
    mutate(headers, body)

    response = post_interaction(sandbox.url, headers, body)

    assert response.status_code == 400
    assert response.json()["code"] == 10016
    assert problem in response.json()["message"]
    assert sandbox.requests()[0]["valid"] is False


def test_interaction_with_wrong_part_name_is_refused(sandbox: Sandbox) -> None:
    response = post_interaction(sandbox.url, sf_headers(), interaction_body(), part="payload")

    assert response.status_code == 400
    assert "got name 'payload'" in response.json()["message"]


def test_interaction_without_bearer_is_unauthorized(sandbox: Sandbox) -> None:
    headers = {k: v for k, v in sf_headers().items() if k != "Authorization"}

    response = post_interaction(sandbox.url, headers, interaction_body())

    assert response.status_code == 401
    assert response.json()["code"] == 10004


ACK_CASES = [
    ("26 acks", lambda h, b: b.update(ack_body(count=26)), "1 to 25 items, got 26"),
    ("type", _set(["acknowledgements", 0, "acknowledgementType"], "Seen"), "Delivered or Read"),
    ("ts bool", _set(["acknowledgements", 0, "acknowledgementTimestamp"], False), "a boolean"),
    (
        "vendor spelling",
        lambda h, b: b["acknowledgements"][0].update(
            acknowledgementCreatedConversationEntryIdentifier=str(uuid.uuid4())
        ),
        "acknowledgementCreatedConversationEntryIdentifier is not allowed",
    ),
    ("sender role", _set(["sender", "role"], "Agent"), "sender.role must be"),
]


@pytest.mark.parametrize(
    ("mutate", "problem"), [c[1:] for c in ACK_CASES], ids=[c[0] for c in ACK_CASES]
)
def test_invalid_acknowledgement_is_refused(
    sandbox: Sandbox, mutate: Mutation, problem: str
) -> None:
    headers, body = sf_headers(), ack_body()
    mutate(headers, body)

    response = post_ack(sandbox.url, headers, body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["success"] is False and answer["code"] == 10016
    assert problem in answer["message"]


MEDALLIA_CASES = [
    ("time in ms", _set(["entry", 0, "time"], 1770163786000), "in epoch milliseconds"),
    ("watermark", _set([*ITEM, "delivery", "watermark"], 1770163786), "watermark is deprecated"),
    ("error missing", _set([*ITEM, "delivery", "status"], "failed"), "error is required"),
    ("error on delivered", _set([*ITEM, "error"], {"code": 1, "name": "x"}), "must be absent"),
    ("recipient id", _set([*ITEM, "recipient", "id"], "other"), "must equal the entry's id"),
    ("status", _set([*ITEM, "delivery", "status"], "read"), "status must be one of"),
    ("empty mids", _set([*ITEM, "delivery", "mids"], []), "mids must be a non-empty array"),
    ("object", _set(["object"], "user"), 'object must be "page"'),
    ("no accept", _header("accept", None), "header accept must be text/plain"),
]


@pytest.mark.parametrize(
    ("mutate", "problem"), [c[1:] for c in MEDALLIA_CASES], ids=[c[0] for c in MEDALLIA_CASES]
)
def test_invalid_medallia_receipt_is_refused(
    sandbox: Sandbox, mutate: Mutation, problem: str
) -> None:
    headers, body = medallia_headers(), medallia_body()
    mutate(headers, body)

    response = post_json(sandbox.url, MEDALLIA, headers, body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["statusCode"] == 400 and answer["error"] == "Bad Request"
    assert problem in answer["message"]


def test_medallia_error_code_must_be_an_integer(sandbox: Sandbox) -> None:
    body = medallia_body("undelivered")
    body["entry"][0]["messaging"][0]["error"]["code"] = "207"

    response = post_json(sandbox.url, MEDALLIA, medallia_headers(), body)

    assert response.status_code == 400
    assert "error.code must be an integer, got a string" in response.json()["message"]


def test_medallia_wrong_signature_is_unauthorized_in_plain_text(sandbox: Sandbox) -> None:
    headers = {**medallia_headers(), "X-Hub-Signature": "sha1=00"}
    del headers["authorization"]

    response = post_json(sandbox.url, MEDALLIA, headers, medallia_body())

    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "X-Hub-Signature" in response.text


def test_check_interaction_works_without_a_server() -> None:
    prepared = requests.Request(
        "POST",
        "http://sandbox" + SF_INTERACTIONS,
        headers=sf_headers(),
        files={"json": (None, json.dumps(interaction_body()), "application/json")},
    ).prepare()
    assert isinstance(prepared.body, bytes)

    headers = {name: str(value) for name, value in prepared.headers.items()}
    data, problems = check_interaction(headers, prepared.body)

    assert problems == []
    assert data["from"] == END_USER


# Faults.


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


# Control endpoints.


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


def test_configured_token_must_match() -> None:
    sandbox = Sandbox(tokens={"salesforce": "right"})
    url = sandbox.start()
    try:
        wrong = post_interaction(url, sf_headers(), interaction_body())
        right = post_interaction(
            url, {**sf_headers(), "Authorization": "Bearer right"}, interaction_body()
        )
    finally:
        sandbox.stop()

    assert wrong.status_code == 401
    assert right.status_code == 202
