"""Targets and token endpoints are called over https, except on loopback or where a target
says `allow_http = true`: a plain http:// URL sends the token and the events in clear text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.config.documents import ENV, document, md, problems_of, sf
from tests.support.cli import run_relay_cli
from worker.config import parse_config

pytestmark = pytest.mark.timeout(30)

JWT = {
    "type": "jwt_bearer",
    "consumer_key": "${SF_TOKEN}",
    "username": "u",
    "private_key": "${SF_TOKEN}",
    "login_url": "http://login.salesforce.com",
}


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ([(sf("base_url"), "http://acme.my.salesforce-scrt.com")], "targets.sf-prod.base_url"),
        ([(md("base_url"), "http://10.0.0.8:8080")], "targets.medallia-eu.base_url"),
        (
            [(md("auth", "token_url"), "http://auth.example.com/oauth/token")],
            "targets.medallia-eu.auth.token_url",
        ),
        ([(sf("auth"), JWT)], "targets.sf-prod.auth.login_url"),
        ([(sf("base_url"), "HTTP://sandbox:8900/salesforce")], "targets.sf-prod.base_url"),
    ],
)
def test_plain_http_outside_loopback_is_refused_saying_what_to_do(
    changes: list[tuple[tuple[str, ...], Any]], where: str
) -> None:
    problems = problems_of(document(*changes))

    [line] = [p for p in problems if p.startswith(where)]
    assert "https" in line and "allow_http = true" in line and "clear text" in line


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8900/salesforce",
        "http://127.8.9.10/x",
        "http://localhost:8900",
        "http://LOCALHOST.:1",
        "http://[::1]:8900/salesforce",
        "https://acme.my.salesforce-scrt.com",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    config = parse_config(document((sf("base_url"), url)), "relay.toml", ENV)
    assert config.targets["sf-prod"].base_url == url.rstrip("/")


def test_a_target_may_allow_plain_http_for_itself_and_its_token_endpoint() -> None:
    # given a target on a private network that says so, and another that does not
    doc = document(
        (md("base_url"), "http://medallia-sandbox.internal:8900/medallia"),
        (md("auth", "token_url"), "http://medallia-sandbox.internal:8900/oauth/token"),
        (md("allow_http"), True),
        (sf("base_url"), "http://sf-sandbox.internal:8900/salesforce"),
    )

    problems = problems_of(doc)

    # then only the other is refused
    assert [p for p in problems if "medallia-eu" in p] == []
    assert any(p.startswith("targets.sf-prod.base_url") for p in problems)


def test_allow_http_must_be_true_or_false() -> None:
    problems = problems_of(document((md("allow_http"), "yes")))
    assert "targets.medallia-eu.allow_http: must be true or false, got 'yes'" in problems


def test_check_config_reports_plain_http_and_exits_non_zero(tmp_path: Path) -> None:
    # given a targets file whose Salesforce target is plain http on another host
    text = tmp_path / "relay.toml"
    text.write_text(
        '[targets.sf]\nkind = "salesforce"\nbase_url = "http://sf.example.com"\n'
        'org_id = "00D5g000004xyzA"\nauthorization_context = "Ctx_1"\n'
        'auth = { type = "bearer", token = "${SF_TOKEN}" }\n'
    )
    env = {"RELAY_CONFIG": str(text), "SF_TOKEN": "t-1234", "PATH": "/usr/bin:/bin"}

    # when the operator checks it
    done = run_relay_cli("check-config", env=env)

    # then it says which URL, why, and what to do
    assert done.returncode == 1
    assert "targets.sf.base_url: http:// sends" in done.stderr
    assert "allow_http = true" in done.stderr
