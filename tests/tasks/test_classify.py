"""The response table in tasks/classify.py's docstring, row by row, plus edge cases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.classify import Delivered, HttpResult, Outcome, Permanent, RetryLater, classify

RETRY_AFTER = 7.0


def sf_body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


SF_ACCEPTED = sf_body(conversationIdentifier="conv-1", id="i-1", workItemIds=["w-1"], success=True)

# (api, HttpResult, expected outcome type, expected RetryLater.after)
ROWS = [
    # | no answer (connect error, timeout, dropped connection) | retry |
    *(
        pytest.param(
            api,
            HttpResult(None, network_error="timed out"),
            RetryLater,
            None,
            id=f"{api}-no-answer",
        )
        for api in ("salesforce", "medallia")
    ),
    pytest.param("medallia", HttpResult(None), RetryLater, None, id="medallia-no-answer-no-detail"),
    # | 2xx from Medallia | delivered |
    pytest.param("medallia", HttpResult(200, b"OK"), Delivered, None, id="medallia-200"),
    pytest.param("medallia", HttpResult(202), Delivered, None, id="medallia-202-empty"),
    pytest.param("medallia", HttpResult(204), Delivered, None, id="medallia-204"),
    pytest.param(
        "medallia",
        HttpResult(200, sf_body(success=False)),
        Delivered,
        None,
        id="medallia-200-any-body",
    ),
    # | 2xx from Salesforce with a JSON body whose `success` is not false | delivered |
    pytest.param("salesforce", HttpResult(202, SF_ACCEPTED), Delivered, None, id="sf-202-success"),
    pytest.param(
        "salesforce", HttpResult(200, sf_body(success=True)), Delivered, None, id="sf-200-ack"
    ),
    pytest.param("salesforce", HttpResult(200, b"{}"), Delivered, None, id="sf-200-no-success-key"),
    # | 2xx from Salesforce with `"success": false` | by its error code; other codes permanent |
    pytest.param(
        "salesforce",
        HttpResult(200, sf_body(success=False, code=10019), retry_after=RETRY_AFTER),
        RetryLater,
        RETRY_AFTER,
        id="sf-200-false-10019",
    ),
    pytest.param(
        "salesforce",
        HttpResult(200, sf_body(success=False, code=10004)),
        Permanent,
        None,
        id="sf-200-false-10004",
    ),
    pytest.param(
        "salesforce",
        HttpResult(200, sf_body(success=False, code=99999)),
        Permanent,
        None,
        id="sf-200-false-unknown-code",
    ),
    pytest.param(
        "salesforce",
        HttpResult(202, sf_body(success=False)),
        Permanent,
        None,
        id="sf-202-false-no-code",
    ),
    # | 2xx from Salesforce whose body is not JSON | retry |
    pytest.param(
        "salesforce", HttpResult(200, b"<html>ok</html>"), RetryLater, None, id="sf-200-html"
    ),
    pytest.param("salesforce", HttpResult(202, b""), RetryLater, None, id="sf-202-empty"),
    pytest.param(
        "salesforce", HttpResult(200, b"[true]"), RetryLater, None, id="sf-200-json-array"
    ),
    # | Salesforce error code 10019, 10055, 10056, 10094 (any status) | retry |
    *(
        pytest.param(
            "salesforce",
            HttpResult(status, sf_body(success=False, code=code), retry_after=RETRY_AFTER),
            RetryLater,
            RETRY_AFTER,
            id=f"sf-{status}-code-{code}",
        )
        for status, code in ((400, 10019), (400, 10055), (409, 10056), (503, 10094), (403, 10055))
    ),
    pytest.param(
        "salesforce",
        HttpResult(400, sf_body(errorCode="10055", message="busy")),
        RetryLater,
        None,
        id="sf-400-errorCode-string-10055",
    ),
    # | Salesforce error code 10003, 10004, 10005, 10037, 10038 (any status) | permanent |
    *(
        pytest.param(
            "salesforce",
            HttpResult(status, sf_body(success=False, code=code), retry_after=RETRY_AFTER),
            Permanent,
            None,
            id=f"sf-{status}-code-{code}",
        )
        for status, code in ((403, 10003), (401, 10004), (400, 10005), (400, 10037), (503, 10038))
    ),
    # | Salesforce 408, 429, 5xx but 501/505, whatever else the body says | retry |
    *(
        pytest.param(
            "salesforce",
            HttpResult(status, body, retry_after=RETRY_AFTER),
            RetryLater,
            RETRY_AFTER,
            id=f"sf-{status}-{name}",
        )
        for status in (408, 429, 500, 502, 503, 504)
        for name, body in (
            ("success-false", sf_body(success=False)),
            ("success-false-unknown-code", sf_body(success=False, code=12345)),
            ("outage-page", b"<html><body>Service Unavailable</body></html>"),
        )
    ),
    # bodies that once crashed the classifier: a code in other digits, too many digits, and
    # nesting past the parser's limit
    pytest.param(
        "salesforce", HttpResult(400, sf_body(errorCode="²")), Permanent, None, id="sf-code-super2"
    ),
    pytest.param(
        "salesforce",
        HttpResult(400, sf_body(errorCode="1" * 5000)),
        Permanent,
        None,
        id="sf-code-5000-digits",
    ),
    pytest.param(
        "salesforce",
        HttpResult(503, b'{"errors":' * 5000 + b"{}" + b"}" * 5000),
        RetryLater,
        None,
        id="sf-503-nested-5000",
    ),
    pytest.param(
        "salesforce",
        HttpResult(200, b"[" * 100_000 + b"]" * 100_000),
        RetryLater,
        None,
        id="sf-200-nested-100000",
    ),
    # | 3xx | permanent (redirects are not followed: fix base_url) | -- asserted separately too
    *(
        pytest.param(api, HttpResult(status), Permanent, None, id=f"{api}-{status}")
        for api in ("salesforce", "medallia")
        for status in (301, 302, 307, 308)
    ),
    # | 401 | retry |
    *(
        pytest.param(api, HttpResult(401, b"Unauthorized"), RetryLater, None, id=f"{api}-401")
        for api in ("salesforce", "medallia")
    ),
    # | 408, 409, 425, 429 | retry, waiting at least Retry-After |
    *(
        pytest.param(
            api,
            HttpResult(status, retry_after=RETRY_AFTER),
            RetryLater,
            RETRY_AFTER,
            id=f"{api}-{status}",
        )
        for api in ("salesforce", "medallia")
        for status in (408, 409, 425, 429)
    ),
    pytest.param("medallia", HttpResult(429), RetryLater, None, id="medallia-429-no-retry-after"),
    # | other 4xx | permanent |
    *(
        pytest.param(
            api,
            HttpResult(status, b"nope", retry_after=RETRY_AFTER),
            Permanent,
            None,
            id=f"{api}-{status}",
        )
        for api in ("salesforce", "medallia")
        for status in (400, 403, 404, 405, 410, 413, 422, 499)
    ),
    # | 500, 502, 503, 504 and any other 5xx but 501, 505 | retry, waiting at least Retry-After |
    *(
        pytest.param(
            api,
            HttpResult(status, b"oops", retry_after=RETRY_AFTER),
            RetryLater,
            RETRY_AFTER,
            id=f"{api}-{status}",
        )
        for api in ("salesforce", "medallia")
        for status in (500, 502, 503, 504, 507, 599)
    ),
    pytest.param(
        "salesforce",
        HttpResult(500, sf_body(message="internal")),
        RetryLater,
        None,
        id="sf-500-json-without-code",
    ),
    # | 501, 505 | permanent |
    *(
        pytest.param(
            api, HttpResult(status, retry_after=RETRY_AFTER), Permanent, None, id=f"{api}-{status}"
        )
        for api in ("salesforce", "medallia")
        for status in (501, 505)
    ),
]


@pytest.mark.parametrize(("api", "result", "outcome_type", "after"), ROWS)
def test_answer_is_classified_as_the_table_says(
    api: str, result: HttpResult, outcome_type: type[Outcome], after: float | None
) -> None:
    # given an answer (or no answer) from `api`
    # when it is classified
    outcome = classify(api, result)
    # then the outcome is the table's, and a retry carries the asked-for wait
    assert type(outcome) is outcome_type
    if isinstance(outcome, RetryLater):
        assert outcome.after == after


@pytest.mark.parametrize("status", [301, 302])
def test_redirect_is_permanent_and_points_at_base_url(status: int) -> None:
    # given a redirect
    result = HttpResult(status, b"Moved")
    # when it is classified
    outcome = classify("medallia", result)
    # then the reason tells the operator to fix base_url
    assert isinstance(outcome, Permanent)
    assert "base_url" in outcome.reason
    assert f"HTTP {status}" in outcome.reason


def test_network_error_reason_names_the_error() -> None:
    # given no answer because of a connect error
    result = HttpResult(None, network_error="Connection refused")
    # when it is classified
    outcome = classify("salesforce", result)
    # then the retry reason says what happened
    assert isinstance(outcome, RetryLater)
    assert "Connection refused" in outcome.reason


def test_permanent_reason_quotes_status_and_body_excerpt() -> None:
    # given a rejection with an explanatory body
    result = HttpResult(400, b'{"message": "bad  field\\n  to"}')
    # when it is classified
    outcome = classify("medallia", result)
    # then the reason has the status and the body, whitespace collapsed
    assert isinstance(outcome, Permanent)
    assert outcome.reason == 'HTTP 400: {"message": "bad field\\n to"}'


def test_long_body_is_cut_in_the_reason() -> None:
    # given a rejection with a 5 kB body
    result = HttpResult(400, b"x" * 5000)
    # when it is classified
    outcome = classify("medallia", result)
    # then the reason holds only an excerpt, marked as cut
    assert isinstance(outcome, Permanent)
    assert len(outcome.reason) < 400
    assert outcome.reason.endswith("…")


def test_salesforce_error_code_is_named_in_the_reason() -> None:
    # given a Salesforce answer carrying a permanent error code
    result = HttpResult(401, sf_body(success=False, code=10004, message="invalid token"))
    # when it is classified
    outcome = classify("salesforce", result)
    # then the reason names the code
    assert isinstance(outcome, Permanent)
    assert "10004" in outcome.reason
