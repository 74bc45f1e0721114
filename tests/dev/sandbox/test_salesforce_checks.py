"""The Salesforce look-alike: valid requests answered like the vendor, invalid ones refused."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.dev.sandbox.builders import (
    END_USER,
    SF_INTERACTIONS,
    Mutation,
    ack_body,
    interaction_body,
    post_ack,
    post_interaction,
    set_at,
    set_header,
    sf_headers,
)
from worker.dev.sandbox import Sandbox
from worker.dev.sandbox.salesforce import check_interaction

pytestmark = pytest.mark.timeout(30)


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


PAYLOAD = ["interactions", 0, "payload"]
INTERACTION_CASES = [
    ("timestamp bool", set_at(["interactions", 0, "timestamp"], True), "got a boolean true"),
    ("timestamp s", set_at(["interactions", 0, "timestamp"], 1770163786), "in epoch seconds"),
    ("errorCode int", set_at([*PAYLOAD, "errorCode"], 207), "errorCode must be a non-empty str"),
    (
        "two interactions",
        lambda h, b: b["interactions"].append(b["interactions"][0]),
        "exactly one interaction, got 2",
    ),
    ("routingAttributes", set_at(["routingAttributes"], {}), "routingAttributes is not allowed"),
    ("missing OrgId", set_header("OrgId", None), "header OrgId must be exactly 15"),
    ("bad RequestId", set_header("RequestId", "42"), "header RequestId must be a UUID"),
    ("role", set_at([*PAYLOAD, "recipient", "role"], "Agent"), "recipient.role must be"),
    ("subject", set_at([*PAYLOAD, "recipient", "subject"], "x"), "subject must equal from"),
    ("payload id", set_at([*PAYLOAD, "id"], "abc"), "payload.id must be a UUID"),
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
    ("type", set_at(["acknowledgements", 0, "acknowledgementType"], "Seen"), "Delivered or Read"),
    ("ts bool", set_at(["acknowledgements", 0, "acknowledgementTimestamp"], False), "a boolean"),
    (
        "vendor spelling",
        lambda h, b: b["acknowledgements"][0].update(
            acknowledgementCreatedConversationEntryIdentifier=str(uuid.uuid4())
        ),
        "acknowledgementCreatedConversationEntryIdentifier is not allowed",
    ),
    ("sender role", set_at(["sender", "role"], "Agent"), "sender.role must be"),
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
