"""The targets file: what a good one parses into, and one clear problem line per mistake."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tasks.backoff import RetryPolicy
from worker.config import DEFAULT_TIMEOUT, ConfigError, RelayConfig, load_config, parse_config

SF_TOKEN = "sf-secret-token-0001"
MD_SECRET = "md-client-secret-0002"
HUB_SECRET = "hub-signing-secret-0003"
ENV = {"SF_TOKEN": SF_TOKEN, "MD_SECRET": MD_SECRET, "HUB_SECRET": HUB_SECRET}

GOOD_TOML = """\
[retry]
base_delay = 1.0
max_attempts = 5

[targets.sf-prod]
kind = "salesforce"
base_url = "https://acme.my.salesforce-scrt.com/"
org_id = "00D5g000004xyzAEAQ"
authorization_context = "Partner1_ChannelDefinition1"
auth = { type = "bearer", token = "${SF_TOKEN}" }

[targets.medallia-eu]
kind = "medallia"
base_url = "https://conversations.sc4.medallia.com/v1//"
channel_guid = "6f1c2a5e-0000-4000-8000-000000000001"
timeout = 3.5
auth = { type = "client_credentials", token_url = "https://auth.example.com/oauth/token", \
client_id = "relay-${SF_TOKEN}", client_secret = "${MD_SECRET}", scope = "conversations" }

[targets.medallia-eu.retry]
max_attempts = 8
max_delay = 60
"""

DELETE = object()


def sf(*path: str) -> tuple[str, ...]:
    """A path inside the Salesforce target's table."""
    return ("targets", "sf-prod", *path)


def md(*path: str) -> tuple[str, ...]:
    """A path inside the Medallia target's table."""
    return ("targets", "medallia-eu", *path)


def good_document() -> dict[str, Any]:
    return tomllib.loads(GOOD_TOML)


def document(*changes: tuple[tuple[str, ...], Any]) -> dict[str, Any]:
    """The good document with each (path, value) applied; a value of DELETE removes the key."""
    doc = good_document()
    for path, value in changes:
        table = doc
        for part in path[:-1]:
            table = table.setdefault(part, {})
        if value is DELETE:
            table.pop(path[-1], None)
        else:
            table[path[-1]] = copy.deepcopy(value)
    return doc


def problems_of(doc: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "relay.toml", ENV if environ is None else environ)
    assert str(info.value).startswith("relay.toml: ")
    return info.value.problems


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


# -- bad documents: one specific problem line each ------------------------------------------

RETRY_KEYS = "base_delay, max_age, max_attempts, max_delay"

BAD = [
    pytest.param(
        [],
        {"MD_SECRET": MD_SECRET},
        "targets.sf-prod.auth.token: environment variable SF_TOKEN is not set",
        id="missing-env-var",
    ),
    pytest.param(
        [(sf("base_url"), "https://${SF_HOST}")],
        ENV,
        "targets.sf-prod.base_url: environment variable SF_HOST is not set",
        id="missing-env-var-in-url",
    ),
    pytest.param(
        [(sf("auth"), {"type": "bearer", "token": "s3cr3t-in-the-file"})],
        ENV,
        'targets.sf-prod.auth.token: write secrets as "${ENV_VAR}", not in the file',
        id="literal-token",
    ),
    pytest.param(
        [(md("auth", "client_secret"), "literal")],
        ENV,
        'targets.medallia-eu.auth.client_secret: write secrets as "${ENV_VAR}", not in the file',
        id="literal-client-secret",
    ),
    pytest.param(
        [(sf("kind"), "smtp")],
        ENV,
        "targets.sf-prod.kind: must be one of medallia, salesforce, got 'smtp'",
        id="unknown-kind",
    ),
    pytest.param(
        [(sf("kind"), DELETE)],
        ENV,
        "targets.sf-prod.kind: must be one of medallia, salesforce, got None",
        id="missing-kind",
    ),
    pytest.param(
        [(sf("base_url"), DELETE)],
        ENV,
        "targets.sf-prod.base_url: required, e.g. https://host.example.com",
        id="missing-base-url",
    ),
    pytest.param(
        [(sf("base_url"), "")],
        ENV,
        "targets.sf-prod.base_url: required, e.g. https://host.example.com",
        id="empty-base-url",
    ),
    pytest.param(
        [(sf("base_url"), "ftp://files.example.com")],
        ENV,
        "targets.sf-prod.base_url: must be an http(s) URL with a host, "
        "got 'ftp://files.example.com'",
        id="non-http-base-url",
    ),
    pytest.param(
        [(sf("base_url"), "https:///path")],
        ENV,
        "targets.sf-prod.base_url: must be an http(s) URL with a host, got 'https:///path'",
        id="base-url-without-host",
    ),
    pytest.param(
        [(sf("base_url"), "https://acme.example.com/api?v=1")],
        ENV,
        "targets.sf-prod.base_url: must not carry a query or fragment",
        id="base-url-query",
    ),
    pytest.param(
        [(sf("base_url"), "https://acme.example.com/#top")],
        ENV,
        "targets.sf-prod.base_url: must not carry a query or fragment",
        id="base-url-fragment",
    ),
    pytest.param(
        [(("target",), {"x": {}})],
        ENV,
        "target: unknown top-level key (expected [targets.NAME] and [retry])",
        id="unknown-top-level-key",
    ),
    pytest.param(
        [(sf("timout"), 5)],
        ENV,
        "targets.sf-prod.timout: unknown key for a salesforce target",
        id="unknown-target-key",
    ),
    pytest.param(
        [(sf("channel_guid"), "6f1c2a5e")],
        ENV,
        "targets.sf-prod.channel_guid: unknown key for a salesforce target",
        id="other-kinds-key",
    ),
    pytest.param(
        [(sf("org_id"), "00D5g")],
        ENV,
        "targets.sf-prod.org_id: must be a 15- or 18-character Salesforce org id",
        id="bad-org-id",
    ),
    pytest.param(
        [(sf("authorization_context"), DELETE)],
        ENV,
        "targets.sf-prod.authorization_context: required, a non-empty string",
        id="missing-authorization-context",
    ),
    pytest.param(
        [(md("channel_guid"), DELETE)],
        ENV,
        "targets.medallia-eu.channel_guid: required, a non-empty string",
        id="missing-channel-guid",
    ),
    pytest.param(
        [(sf("auth"), {"type": "hub_signature", "secret": "${HUB_SECRET}"})],
        ENV,
        "targets.sf-prod.auth.type: must be one of bearer, jwt_bearer, got 'hub_signature'",
        id="auth-type-not-for-kind",
    ),
    pytest.param(
        [(md("auth"), {"type": "basic", "token": "${SF_TOKEN}"})],
        ENV,
        "targets.medallia-eu.auth.type: must be one of bearer, client_credentials, "
        "hub_signature, got 'basic'",
        id="unknown-auth-type",
    ),
    pytest.param(
        [(sf("auth"), DELETE)],
        ENV,
        'targets.sf-prod.auth: required, e.g. { type = "bearer", token = "${TOKEN}" }',
        id="missing-auth",
    ),
    pytest.param(
        [(sf("auth"), "bearer")],
        ENV,
        'targets.sf-prod.auth: required, e.g. { type = "bearer", token = "${TOKEN}" }',
        id="auth-not-a-table",
    ),
    pytest.param(
        [(sf("auth"), {"type": "bearer"})],
        ENV,
        "targets.sf-prod.auth.token: required for auth type 'bearer'",
        id="auth-missing-token",
    ),
    pytest.param(
        [(md("auth", "client_id"), DELETE)],
        ENV,
        "targets.medallia-eu.auth.client_id: required for auth type 'client_credentials'",
        id="auth-missing-client-id",
    ),
    pytest.param(
        [(sf("auth", "user"), "relay")],
        ENV,
        "targets.sf-prod.auth.user: unknown key for auth type 'bearer'",
        id="unknown-auth-key",
    ),
    pytest.param(
        [],
        {**ENV, "SF_TOKEN": ""},
        "targets.sf-prod.auth.token: must be a non-empty string",
        id="empty-token",
    ),
    pytest.param(
        [(sf("timeout"), -1)],
        ENV,
        "targets.sf-prod.timeout: must be a positive number, got -1",
        id="negative-timeout",
    ),
    pytest.param(
        [(sf("timeout"), 0)],
        ENV,
        "targets.sf-prod.timeout: must be a positive number, got 0",
        id="zero-timeout",
    ),
    pytest.param(
        [(sf("timeout"), True)],
        ENV,
        "targets.sf-prod.timeout: must be a positive number, got True",
        id="bool-timeout",
    ),
    pytest.param(
        [(sf("timeout"), "10")],
        ENV,
        "targets.sf-prod.timeout: must be a positive number, got '10'",
        id="string-timeout",
    ),
    pytest.param(
        [(sf("timeout"), float("inf"))],
        ENV,
        "targets.sf-prod.timeout: must be a positive number, got inf",
        id="infinite-timeout",
    ),
    pytest.param(
        [(("retry", "max_retries"), 3)],
        ENV,
        f"retry.max_retries: unknown key (expected {RETRY_KEYS})",
        id="retry-unknown-key",
    ),
    pytest.param(
        [(md("retry", "jitter"), True)],
        ENV,
        f"targets.medallia-eu.retry.jitter: unknown key (expected {RETRY_KEYS})",
        id="target-retry-unknown-key",
    ),
    pytest.param(
        [(("retry", "base_delay"), -1.5)],
        ENV,
        "retry.base_delay: must be a positive number, got -1.5",
        id="retry-negative",
    ),
    pytest.param(
        [(md("retry", "max_age"), 0)],
        ENV,
        "targets.medallia-eu.retry.max_age: must be a positive number, got 0",
        id="retry-zero",
    ),
    pytest.param(
        [(md("retry", "max_attempts"), 2.5)],
        ENV,
        "targets.medallia-eu.retry.max_attempts: must be a whole number",
        id="max-attempts-fraction",
    ),
    pytest.param(
        [(md("retry", "base_delay"), 100.0)],
        ENV,
        "targets.medallia-eu.retry: base_delay (100.0) exceeds max_delay (60.0)",
        id="base-delay-over-max-delay",
    ),
    pytest.param(
        [(("retry",), [1, 2])],
        ENV,
        "retry: must be a table",
        id="retry-not-a-table",
    ),
    pytest.param(
        [(("targets",), DELETE)],
        ENV,
        "targets: no targets configured (add a [targets.NAME] table)",
        id="no-targets",
    ),
    pytest.param(
        [(("targets",), {})],
        ENV,
        "targets: no targets configured (add a [targets.NAME] table)",
        id="empty-targets",
    ),
    pytest.param(
        [(("targets", "sf prod"), {"kind": "x"})],
        ENV,
        "targets.sf prod: a target name uses letters, digits, '_', '-', '.' only",
        id="bad-target-name",
    ),
    pytest.param(
        [(("targets", "-sf"), {"kind": "x"})],
        ENV,
        "targets.-sf: a target name uses letters, digits, '_', '-', '.' only",
        id="target-name-leading-dash",
    ),
    pytest.param(
        [(("targets", "sf2"), 5)],
        ENV,
        "targets.sf2: must be a table",
        id="target-not-a-table",
    ),
]


@pytest.mark.parametrize(("changes", "environ", "expected"), BAD)
def test_bad_document(
    changes: list[tuple[tuple[str, ...], Any]], environ: dict[str, str], expected: str
) -> None:
    problems = problems_of(document(*changes), environ)
    assert expected in problems, problems


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param([(sf("timeout"), "${SF_TOKEN}")], id="secret-as-timeout"),
        pytest.param([(sf("base_url"), "${SF_TOKEN}")], id="secret-as-base-url"),
        pytest.param([(sf("kind"), "${SF_TOKEN}")], id="secret-as-kind"),
    ],
)
def test_problems_never_show_a_substituted_value(
    changes: list[tuple[tuple[str, ...], Any]],
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(document(*changes), "relay.toml", ENV)
    assert info.value.problems
    assert SF_TOKEN not in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    doc = document(
        (("colour",), "blue"),
        (sf("timeout"), 0),
        (md("base_url"), "ftp://conversations.example.com"),
        (("retry", "max_attempts"), 2.5),
    )
    problems = problems_of(doc)
    assert sorted(problems) == sorted(
        [
            "colour: unknown top-level key (expected [targets.NAME] and [retry])",
            "targets.sf-prod.timeout: must be a positive number, got 0",
            "targets.medallia-eu.base_url: must be an http(s) URL with a host, "
            "got 'ftp://conversations.example.com'",
            "retry.max_attempts: must be a whole number",
        ]
    )


def test_error_message_lists_every_problem() -> None:
    doc = document((sf("kind"), "smtp"), (md("timeout"), -2))
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "conf/relay.toml", ENV)
    text = str(info.value)
    assert text.splitlines()[0] == "conf/relay.toml: 2 configuration problem(s):"
    for problem in info.value.problems:
        assert f"  - {problem}" in text.splitlines()


def test_bad_top_level_retry_is_reported_once() -> None:
    doc = document((("retry",), {"base_delay": 10.0, "max_delay": 5.0}))
    assert problems_of(doc) == ["retry: base_delay (10.0) exceeds max_delay (5.0)"]


@pytest.mark.parametrize("auth_type", [["bearer"], {"name": "bearer"}], ids=["array", "table"])
def test_unhashable_auth_type_is_a_problem(auth_type: Any) -> None:
    doc = document((sf("auth", "type"), auth_type))
    problems = problems_of(doc)
    assert any(p.startswith("targets.sf-prod.auth.type: must be one of bearer") for p in problems)


# -- load_config ----------------------------------------------------------------------------


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(GOOD_TOML)
    config = load_config(str(path), ENV)
    assert set(config.targets) == {"sf-prod", "medallia-eu"}


def test_load_config_uses_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(GOOD_TOML)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert load_config(str(path)).targets["sf-prod"].auth.params["token"] == SF_TOKEN


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(str(path), ENV)
    assert info.value.problems == ["file not found (set RELAY_CONFIG to the targets file)"]
    assert str(info.value).startswith(str(path))


def test_load_config_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[targets.sf\nkind = "salesforce"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path), ENV)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("not valid TOML: ")


def test_load_config_reports_problems_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(GOOD_TOML.replace('kind = "salesforce"', 'kind = "smtp"'))
    with pytest.raises(ConfigError) as info:
        load_config(str(path), ENV)
    assert str(info.value).startswith(f"{path}: 1 configuration problem(s):")
