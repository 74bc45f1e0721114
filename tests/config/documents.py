"""Targets documents the config tests build: a good one, and changes to it."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from worker.config import ConfigError, parse_config

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
