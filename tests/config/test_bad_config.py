"""A bad targets file: one clear problem line each, every problem at once, no secrets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.config.bad_documents import BAD
from tests.config.documents import (
    ENV,
    MD_SECRET,
    SF_TOKEN,
    document,
    md,
    problems_of,
    sf,
)
from worker.config import ConfigError, parse_config


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
            "colour: unknown top-level key (expected [targets.NAME], [sources.NAME] and [retry])",
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


def test_an_unset_variable_is_the_only_problem_of_its_value() -> None:
    # an empty value would also "must be a non-empty string" (or not be a URL); set but
    # empty, the value is what is wrong
    unset = problems_of(document(), {"MD_SECRET": MD_SECRET})
    empty = problems_of(document(), {"MD_SECRET": MD_SECRET, "SF_TOKEN": ""})
    uses = ("targets.sf-prod.auth.token", "targets.medallia-eu.auth.client_id")
    assert unset == [f"{where}: environment variable SF_TOKEN is not set" for where in uses]
    assert "targets.sf-prod.auth.token: must be a non-empty string" in empty
