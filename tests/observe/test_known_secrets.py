"""Every secret the process knows is one the scrubbers know: the settings' (URL passwords in
the userinfo and the query, every sentinel address), the targets' and sources', and tokens
fetched at run time; none of them survives the Sentry scrubber."""

from __future__ import annotations

import pytest

from tests.config.documents import ENV, MD_SECRET, SF_TOKEN
from tests.config.test_sources import SECRETS, SOURCES, parse
from worker.observe.secrets import FILTERED, KnownSecrets, process_secrets
from worker.observe.sentry import Scrubber
from worker.settings import load_settings

pytestmark = pytest.mark.timeout(10)

SETTINGS_ENV = {
    "REDIS_URL": "sentinel://:pw-first%21@h1:26379/0;sentinel://:pw-second@h2:26379/0"
    "?sentinel_password=pw-query",
    "RELAY_SENTINEL_PASSWORD": "pw-sentinels",
    "RELAY_INGRESS_TOKEN": "ingress-token-1",
    "SENTRY_DSN": "https://dsn-key-1@sentry.example/1",
}


def test_the_process_knows_every_secret_of_its_settings_and_targets_file() -> None:
    # given settings and a targets file with sources
    settings = load_settings(SETTINGS_ENV)
    config = parse(SOURCES)

    # when the process's secrets are gathered
    found = process_secrets(settings, config)

    # then each is there: URL passwords as written and decoded, tokens, every source's secret
    expected = {"pw-first%21", "pw-first!", "pw-second", "pw-query", "pw-sentinels"}
    expected |= {"ingress-token-1", SETTINGS_ENV["SENTRY_DSN"], SF_TOKEN, MD_SECRET}
    expected |= set(SECRETS.values())
    assert expected <= found
    assert "https://hooks.example.com/relay/tw" not in found  # a public URL is no secret
    assert set(ENV.values()) - {"hub-signing-secret-0003"} <= found


def test_sentry_never_receives_a_secret_however_deep_or_however_late() -> None:
    # given a scrubber over the process's secrets, and a token fetched after it was made
    known = KnownSecrets()
    known.add(process_secrets(load_settings(SETTINGS_ENV), parse(SOURCES)))
    scrubber = Scrubber(known=known)
    known.remember("fetched-access-token-9")

    # when an event quotes them in a message, an exception and a breadcrumb
    event = {
        "message": "cannot reach sentinel://:pw-second@h2 with pw-sentinels",
        "exception": {"values": [{"value": "token ingress-token-1 refused; tw-1"}]},
        "breadcrumbs": {"values": [{"message": "Bearer fetched-access-token-9 and pw-first!"}]},
    }
    cleaned = scrubber(event, {})

    # then none of them is left
    text = str(cleaned)
    for secret in ("pw-second", "pw-sentinels", "ingress-token-1", "tw-1", "fetched-access"):
        assert secret not in text
    assert "pw-first!" not in text and text.count(FILTERED) == 6


def test_a_fetched_token_is_forgotten_only_after_many_newer_ones() -> None:
    known = KnownSecrets()
    for n in range(100):
        known.remember(f"token-{n:04d}")

    assert known.redact("token-0099 token-0036") == f"{FILTERED} {FILTERED}"
    assert known.redact("token-0035") == "token-0035"
