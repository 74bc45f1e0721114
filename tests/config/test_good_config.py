"""A good targets file: targets, secrets, ${ENV} substitution, retry fallbacks."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.backoff import RetryPolicy
from tests.config.documents import (
    DELETE,
    ENV,
    HUB_SECRET,
    MD_SECRET,
    SF_TOKEN,
    document,
    good_document,
    md,
    sf,
)
from worker.config import DEFAULT_TIMEOUT, RelayConfig, parse_config

# -- a good document ------------------------------------------------------------------------


@pytest.fixture
def config() -> RelayConfig:
    return parse_config(good_document(), "relay.toml", ENV)


def test_good_document_has_both_targets(config: RelayConfig) -> None:
    assert set(config.targets) == {"sf-prod", "medallia-eu"}
    assert config.retry == RetryPolicy(base_delay=1.0, max_delay=1800.0, max_attempts=5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "sf-prod",
            {
                "kind": "salesforce",
                "base_url": "https://acme.my.salesforce-scrt.com",
                "options": {
                    "base_url": "https://acme.my.salesforce-scrt.com",
                    "org_id": "00D5g000004xyzA",
                    "authorization_context": "Partner1_ChannelDefinition1",
                },
                "auth_type": "bearer",
                "auth_params": {"token": SF_TOKEN},
                "timeout": DEFAULT_TIMEOUT,
                "retry": RetryPolicy(
                    base_delay=1.0, max_delay=1800.0, max_attempts=5, max_age=86400.0
                ),
            },
            id="salesforce",
        ),
        pytest.param(
            "medallia-eu",
            {
                "kind": "medallia",
                "base_url": "https://conversations.sc4.medallia.com/v1",
                "options": {
                    "base_url": "https://conversations.sc4.medallia.com/v1",
                    "channel_guid": "6f1c2a5e-0000-4000-8000-000000000001",
                },
                "auth_type": "client_credentials",
                "auth_params": {
                    "token_url": "https://auth.example.com/oauth/token",
                    "client_id": f"relay-{SF_TOKEN}",
                    "client_secret": MD_SECRET,
                    "scope": "conversations",
                },
                "timeout": 3.5,
                "retry": RetryPolicy(base_delay=1.0, max_delay=60.0, max_attempts=8),
            },
            id="medallia",
        ),
    ],
)
def test_good_target(config: RelayConfig, name: str, expected: dict[str, Any]) -> None:
    target = config.targets[name]
    assert target.name == name
    assert target.kind == expected["kind"]
    assert target.base_url == expected["base_url"]
    for option, value in expected["options"].items():
        assert getattr(target.options, option) == value, option
    assert target.auth.type == expected["auth_type"]
    assert dict(target.auth.params) == expected["auth_params"]
    assert target.timeout == expected["timeout"]
    assert isinstance(target.timeout, float)
    assert target.retry == expected["retry"]
    assert isinstance(target.retry.max_attempts, int)


def test_default_timeout_is_ten_seconds() -> None:
    assert DEFAULT_TIMEOUT == 10.0


def test_secrets_are_collected_and_never_shown_by_repr(config: RelayConfig) -> None:
    assert config.secrets == {SF_TOKEN, MD_SECRET}
    sf_token = config.targets["sf-prod"].auth.params["token"]
    md_secret = config.targets["medallia-eu"].auth.params["client_secret"]
    assert sf_token == SF_TOKEN and md_secret == MD_SECRET
    for secret, value in ((sf_token, SF_TOKEN), (md_secret, MD_SECRET)):
        assert value not in repr(secret)
    for shown in (
        repr(config.targets["sf-prod"].auth),
        repr(config.targets["medallia-eu"]),
        repr(dict(config.targets["medallia-eu"].auth.params)),
    ):
        assert SF_TOKEN not in shown
        assert MD_SECRET not in shown


def test_repr_of_whole_config_never_shows_a_secret(config: RelayConfig) -> None:
    for shown in (repr(config), repr(config.secrets)):
        assert SF_TOKEN not in shown
        assert MD_SECRET not in shown


def test_hub_signature_secret_is_collected() -> None:
    doc = document((md("auth"), {"type": "hub_signature", "secret": "${HUB_SECRET}"}))
    config = parse_config(doc, "relay.toml", ENV)
    assert config.targets["medallia-eu"].auth.type == "hub_signature"
    assert config.targets["medallia-eu"].auth.params == {"secret": HUB_SECRET}
    assert HUB_SECRET in config.secrets
    assert HUB_SECRET not in repr(config.targets["medallia-eu"])


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        pytest.param(
            "${HOST}", {"HOST": "https://h.example.com"}, "https://h.example.com", id="whole"
        ),
        pytest.param(
            "https://${HOST}/api/",
            {"HOST": "h.example.com"},
            "https://h.example.com/api",
            id="part",
        ),
        pytest.param(
            "${SCHEME}://${HOST}",
            {"SCHEME": "http", "HOST": "localhost:8080"},
            "http://localhost:8080",
            id="two-vars",
        ),
        pytest.param(
            "https://h.example.com/${X}",
            {"X": "${Y}"},
            "https://h.example.com/${Y}",
            id="no-recursion",
        ),
    ],
)
def test_env_substitution(value: str, environ: dict[str, str], expected: str) -> None:
    doc = document((sf("base_url"), value))
    config = parse_config(doc, "relay.toml", {**ENV, **environ})
    assert config.targets["sf-prod"].base_url == expected


# -- retry policy fallback ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("top", "own", "expected"),
    [
        pytest.param(DELETE, DELETE, RetryPolicy(2.0, 1800.0, 15, 86400.0), id="defaults"),
        pytest.param(
            {"base_delay": 0.5, "max_age": 600},
            DELETE,
            RetryPolicy(0.5, 1800.0, 15, 600.0),
            id="top-level",
        ),
        pytest.param(
            DELETE,
            {"max_attempts": 8},
            RetryPolicy(2.0, 1800.0, 8, 86400.0),
            id="own-over-defaults",
        ),
        pytest.param(
            {"base_delay": 0.5, "max_attempts": 3, "max_delay": 100.0},
            {"max_attempts": 8, "max_age": 60.0},
            RetryPolicy(0.5, 100.0, 8, 60.0),
            id="own-over-top-level",
        ),
        pytest.param(
            {"base_delay": 1, "max_delay": 30, "max_attempts": 4, "max_age": 120},
            {"base_delay": 3, "max_delay": 40, "max_attempts": 5, "max_age": 130},
            RetryPolicy(3.0, 40.0, 5, 130.0),
            id="own-complete",
        ),
        pytest.param(
            DELETE, {"max_attempts": 4.0}, RetryPolicy(2.0, 1800.0, 4, 86400.0), id="whole-float"
        ),
    ],
)
def test_retry_policy_fallback(top: Any, own: Any, expected: RetryPolicy) -> None:
    doc = document((("retry",), top), (md("retry"), own))
    config = parse_config(doc, "relay.toml", ENV)
    assert config.targets["medallia-eu"].retry == expected
    assert isinstance(config.targets["medallia-eu"].retry.max_attempts, int)
    # the other target has no table of its own: top-level, then defaults
    top_policy = RetryPolicy(**top) if isinstance(top, dict) else RetryPolicy()
    assert config.targets["sf-prod"].retry == top_policy
    assert config.retry == top_policy
