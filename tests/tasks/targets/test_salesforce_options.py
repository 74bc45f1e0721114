"""A Salesforce target table: org id, authorization context, channel length."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.outbound import NotDeliverable
from tasks.targets.salesforce import KIND, SalesforceOptions
from tests.tasks.targets.salesforce_builders import BASE_URL, CONTEXT, OPTIONS, ORG_ID, WHERE, event

GOOD_TABLE = {
    "kind": "salesforce",
    "base_url": BASE_URL,
    "org_id": ORG_ID,
    "authorization_context": CONTEXT,
}


@pytest.mark.parametrize(
    ("org_id", "expected"),
    [
        pytest.param(ORG_ID, ORG_ID, id="15-chars"),
        pytest.param(ORG_ID + "AAQ", ORG_ID, id="18-chars-cut-to-15"),
        pytest.param(f"  {ORG_ID}  ", ORG_ID, id="surrounding-spaces"),
    ],
)
def test_parse_options_accepts_good_table(org_id: str, expected: str) -> None:
    # given a complete target table
    table = {**GOOD_TABLE, "org_id": org_id}
    # when it is parsed
    options, problems = KIND.parse_options(table, WHERE)
    # then there are no problems and the org id is the 15-character form
    assert problems == []
    assert options == SalesforceOptions(BASE_URL, expected, CONTEXT)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        pytest.param({"org_id": ...}, f"{WHERE}.org_id: required", id="org-id-missing"),
        pytest.param({"org_id": ""}, f"{WHERE}.org_id: required", id="org-id-empty"),
        pytest.param({"org_id": 15}, f"{WHERE}.org_id: required", id="org-id-not-string"),
        pytest.param({"org_id": ORG_ID[:14]}, f"{WHERE}.org_id: must be a 15-", id="org-id-14"),
        pytest.param({"org_id": ORG_ID + "A"}, f"{WHERE}.org_id: must be a 15-", id="org-id-16"),
        pytest.param({"org_id": ORG_ID + "AA"}, f"{WHERE}.org_id: must be a 15-", id="org-id-17"),
        pytest.param({"org_id": ORG_ID + "AAAA"}, f"{WHERE}.org_id: must be a 15-", id="org-id-19"),
        pytest.param(
            {"org_id": "00D5g000004xy-A"}, f"{WHERE}.org_id: must be a 15-", id="org-id-bad-char"
        ),
        pytest.param(
            {"authorization_context": ...},
            f"{WHERE}.authorization_context: required",
            id="context-missing",
        ),
    ],
)
def test_parse_options_reports_bad_table(change: dict[str, Any], fragment: str) -> None:
    # given a target table with one bad key
    table = {k: v for k, v in {**GOOD_TABLE, **change}.items() if v is not ...}
    # when it is parsed
    _, problems = KIND.parse_options(table, WHERE)
    # then exactly one problem names the key
    assert len(problems) == 1
    assert fragment in problems[0]


def test_a_channel_longer_than_the_api_allows_is_not_deliverable() -> None:
    # given a failure whose channel address is longer than Salesforce's 240 characters
    too_long = event(status="failed", channel="c" * 241)

    # when it is translated, then it is refused with the field named
    with pytest.raises(NotDeliverable, match="channel"):
        KIND.translate(too_long, OPTIONS)
