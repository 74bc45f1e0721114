"""A process is given only the secrets it uses: a worker the targets', the ingress the sources'.
The targets file still loads whole in each, the other part's ${VAR}s read as stand-ins that
are never sent nor taken for secrets; in the part a process uses, an unset one is a problem."""

from __future__ import annotations

import pytest

from tests.config.documents import ENV, MD_SECRET, SF_TOKEN, good_document
from tests.config.test_sources import SECRETS, SOURCES, parse
from worker.config import ConfigError, parse_config

pytestmark = pytest.mark.timeout(10)
DOCUMENT = {**good_document(), "sources": SOURCES}


def test_the_ingress_needs_only_the_sources_secrets() -> None:
    config = parse_config(DOCUMENT, "relay.toml", SECRETS, secrets_for=("sources",))

    assert config.sources["tw"].secrets["auth_token"] == "tw-1"
    assert config.targets["sf-prod"].auth.params["token"] == "(SF_TOKEN not given to this process)"
    assert set(config.secrets) == set(SECRETS.values())


def test_a_worker_needs_only_the_targets_secrets() -> None:
    config = parse_config(DOCUMENT, "relay.toml", ENV, secrets_for=("targets",))

    assert config.targets["sf-prod"].auth.params["token"] == SF_TOKEN
    assert "not given" in config.sources["wa"].secrets["app_secret"]
    assert {SF_TOKEN, MD_SECRET} <= config.secrets
    assert not any("not given" in s for s in config.secrets)


@pytest.mark.parametrize(
    ("environ", "uses", "missing"),
    [
        (SECRETS, ("targets",), "SF_TOKEN"),
        (ENV, ("sources",), "TW"),
        (ENV, ("targets", "sources"), "TW"),
    ],
)
def test_a_secret_the_process_uses_must_be_set(
    environ: dict[str, str], uses: tuple[str, ...], missing: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(DOCUMENT, "relay.toml", environ, secrets_for=uses)

    assert any(f"environment variable {missing} is not set" in p for p in caught.value.problems)


def test_by_default_every_secret_is_needed() -> None:
    assert parse(SOURCES).targets  # with every variable set
    with pytest.raises(ConfigError):
        parse_config(DOCUMENT, "relay.toml", SECRETS)
