"""Values that would reach an HTTP request line or header are checked at start-up: no line
breaks in headers, no credentials or spaces in URLs, token endpoints that are URLs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.config.documents import ENV, document, md, problems_of, sf

ROWS = [
    pytest.param(
        [(sf("authorization_context"), "Partner1\r\nX-Injected: 1")],
        ENV,
        "targets.sf-prod.authorization_context: printable ASCII without line breaks",
        id="authorization-context-crlf",
    ),
    pytest.param(
        [(sf("base_url"), "https://user:pass@acme.my.salesforce-scrt.com")],
        ENV,
        "targets.sf-prod.base_url: must not carry credentials",
        id="base-url-credentials",
    ),
    pytest.param(
        [(sf("base_url"), "https://acme.example.com/a b")],
        ENV,
        "targets.sf-prod.base_url: must not contain spaces or control characters",
        id="base-url-space",
    ),
    pytest.param(
        [(sf("base_url"), "https://acme.example.com:port")],
        ENV,
        "targets.sf-prod.base_url: not a URL",
        id="base-url-bad-port",
    ),
    pytest.param(
        [(md("auth", "token_url"), "auth.example.com/oauth/token")],
        ENV,
        "targets.medallia-eu.auth.token_url: must be an http(s) URL with a host",
        id="token-url-no-scheme",
    ),
    pytest.param(
        [(md("auth", "token_url"), "https://id:secret@auth.example.com/token")],
        ENV,
        "targets.medallia-eu.auth.token_url: must not carry credentials",
        id="token-url-credentials",
    ),
    pytest.param(
        [
            (
                sf("auth"),
                {
                    "type": "jwt_bearer",
                    "consumer_key": "${SF_TOKEN}",
                    "username": "u",
                    "private_key": "${SF_TOKEN}",
                    "login_url": "login.salesforce.com",
                },
            )
        ],
        ENV,
        "targets.sf-prod.auth.login_url: must be an http(s) URL with a host",
        id="login-url-no-scheme",
    ),
    pytest.param(
        [],
        {**ENV, "SF_TOKEN": "token\r\nX-Injected: 1"},
        "targets.sf-prod.auth.token: must not contain line breaks or control characters",
        id="token-with-crlf",
    ),
]


@pytest.mark.parametrize(("changes", "environ", "expected"), ROWS)
def test_a_value_unfit_for_a_request_is_refused_at_start_up(
    changes: list[tuple[tuple[str, ...], Any]], environ: dict[str, str], expected: str
) -> None:
    problems = problems_of(document(*changes), environ)
    assert any(expected in p for p in problems), problems
    assert not any("X-Injected" in p or "secret" in p for p in problems)
