"""Bad targets documents, each with the one problem line it must produce."""

from __future__ import annotations

import pytest

from tests.config.documents import (
    DELETE,
    ENV,
    MD_SECRET,
    md,
    sf,
)

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
        "target: unknown top-level key (expected [targets.NAME], [sources.NAME] and [retry])",
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
