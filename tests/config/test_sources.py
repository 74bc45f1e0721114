"""[sources.NAME] tables: each kind's secrets as ${ENV}, defaults, and one problem line each."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.config.documents import ENV, good_document
from worker.config import ConfigError, parse_config
from worker.sources import DEFAULT_CORRELATION_TTL, DEFAULT_CORRELATION_WAIT

SOURCES = tomllib.loads("""
[tw]
kind = "twilio"
auth_token = "${TW}"
public_url = "https://hooks.example.com/relay/tw"
target = "sf-prod"
correlation_wait = 60

[wa]
kind = "whatsapp"
app_secret = "${WA}"
verify_token = "${WA_VERIFY}"

[vg]
kind = "vonage"
signature_secret = "${VG}"
correlation_ttl = 3600

[ib]
kind = "infobip"
token = "${TOKEN}"

[smpp]
kind = "smpp_dlr"
token = "${TOKEN}"
""")
SECRETS = {"TW": "tw-1", "WA": "wa-2", "WA_VERIFY": "wa-3", "VG": "vg-4", "TOKEN": "tok-5"}


def parse(sources: dict[str, Any]) -> Any:
    return parse_config({**good_document(), "sources": sources}, "relay.toml", {**ENV, **SECRETS})


def problems(sources: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(sources)
    return info.value.problems


def test_every_kind_of_source_is_read_with_its_secrets_and_defaults() -> None:
    config = parse(SOURCES)
    tw, vg = config.sources["tw"], config.sources["vg"]
    assert (tw.kind, tw.target, tw.correlation_wait) == ("twilio", "sf-prod", 60.0)
    assert tw.secrets == {"auth_token": "tw-1", "public_url": "https://hooks.example.com/relay/tw"}
    assert (vg.correlation_ttl, vg.correlation_wait) == (3600.0, DEFAULT_CORRELATION_WAIT)
    assert config.sources["ib"].correlation_ttl == DEFAULT_CORRELATION_TTL
    assert {"tw-1", "wa-2", "wa-3", "vg-4", "tok-5"} <= config.secrets
    assert "tok-5" not in repr(config.sources["ib"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"ib": {"kind": "infobip", "token": "literal"}},
            'sources.ib.token: write secrets as "${ENV_VAR}", not in the file',
        ),
        ({"ib": {"kind": "infobip"}}, 'sources.ib.token: required, e.g. token = "${ENV_VAR}"'),
        (
            {"x": {"kind": "sms"}},
            "sources.x.kind: must be one of twilio, whatsapp, vonage, infobip, smpp_dlr, got 'sms'",
        ),
        (
            {"ib": {"kind": "infobip", "token": "${TOKEN}", "target": "nowhere"}},
            "sources.ib.target: 'nowhere' is not a configured target",
        ),
        (
            {"ib": {"kind": "infobip", "token": "${TOKEN}", "correlation_wait": 0}},
            "sources.ib.correlation_wait: must be positive, got 0",
        ),
        (
            {"ib": {"kind": "infobip", "token": "${TOKEN}", "public_url": "https://x"}},
            "sources.ib.public_url: unknown key for a infobip source",
        ),
        (
            {"tw": {"kind": "twilio", "auth_token": "${TW}", "public_url": "ftp://x"}},
            "sources.tw.public_url: must be the http(s) URL Twilio calls, got 'ftp://x'",
        ),
        (
            {"ib": {"kind": "infobip", "token": "${MISSING}"}},
            "sources.ib.token: environment variable MISSING is not set",
        ),
        (
            {"bad name": {"kind": "infobip", "token": "${TOKEN}"}},
            "sources.bad name: a source name uses letters, digits, '_', '-', '.' only",
        ),
    ],
)
def test_a_bad_source_is_one_problem_line(change: dict[str, Any], expected: str) -> None:
    assert expected in problems({**SOURCES, **change})


def test_every_problem_of_every_source_is_listed_at_once() -> None:
    bad = {
        "a": {"kind": "twilio"},
        "b": {"kind": "vonage", "signature_secret": "x", "correlation_ttl": "long"},
    }
    assert len(problems(bad)) == 3
