"""Settings from the environment: defaults, every value checked, secrets never shown."""

from __future__ import annotations

import pytest

from worker.settings import SPECS, Settings, SettingsError, load_settings


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    # given no variables / when loaded
    settings = load_settings({})
    # then every field has its spec's default
    assert settings == Settings()
    assert settings.bundle_size == 200 and settings.log_format == "text"


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("RELAY_BATCH", "50", ("bundle_size", 50)),
        ("RELAY_BATCH", " 50 ", ("bundle_size", 50)),
        ("RELAY_BATCH", "", ("bundle_size", 200)),
        ("RELAY_LOG_FORMAT", "JSON", ("log_format", "json")),
        ("RELAY_LOG_LEVEL", "debug", ("log_level", "DEBUG")),
        ("RELAY_TASK_EVENTS", "yes", ("task_events", True)),
        ("RELAY_TASK_EVENTS", "0", ("task_events", False)),
        ("RELAY_METRICS_PORT", "0", ("metrics_port", 0)),
        ("RELAY_DEDUP_WINDOW", "0", ("dedup_window", 0.0)),
        ("REDIS_URL", "rediss://u:p@h:6380/1", ("redis_url", "rediss://u:p@h:6380/1")),
        (
            "REDIS_URL",
            "sentinel://s1:26379;sentinel://s2",
            ("redis_url", "sentinel://s1:26379;sentinel://s2"),
        ),
    ],
)
def test_accepted_values(env: str, value: str, expected: tuple[str, object]) -> None:
    settings = load_settings({env: value})
    assert getattr(settings, expected[0]) == expected[1]


@pytest.mark.parametrize(
    ("env", "value", "says"),
    [
        ("RELAY_BATCH", "0", "must be a whole number from 1 to 10,000 (default: 200)"),
        ("RELAY_BATCH", "2.5", "must be a whole number from 1 to 10,000"),
        ("RELAY_BATCH", "lots", "must be a whole number"),
        ("RELAY_VISIBILITY_TIMEOUT", "0", "must be a number from 2 to 3,600 s (default: 10.0)"),
        ("RELAY_VISIBILITY_TIMEOUT", "nan", "must be a number from 2 to 3,600 s"),
        ("RELAY_VISIBILITY_TIMEOUT", "inf", "must be a number from 2 to 3,600 s"),
        ("RELAY_LOG_FORMAT", "yaml", "RELAY_LOG_FORMAT='yaml': must be one of text, json"),
        ("RELAY_LOG_LEVEL", "LOUD", "must be one of DEBUG, INFO, WARNING, ERROR"),
        ("RELAY_TASK_EVENTS", "maybe", "must be 1/true/yes/on or 0/false/no/off"),
        ("RELAY_METRICS_PORT", "70000", "from 0 to 65,535"),
        ("REDIS_URL", "htp://foo", "must be a URL starting with redis://, rediss://, unix://"),
    ],
)
def test_a_value_out_of_its_range_is_refused_saying_what_is_accepted(
    env: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({env: value})
    assert says in str(caught.value.code)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"RELAY_BATCH": "0", "RELAY_LANES": "-1", "RELAY_LOG_FORMAT": "yaml"})
    assert len(caught.value.problems) == 3


def test_a_cross_setting_rule_is_checked() -> None:
    with pytest.raises(SettingsError, match="RELAY_BREAKER_MAX_COOLDOWN"):
        load_settings({"RELAY_BREAKER_COOLDOWN": "60", "RELAY_BREAKER_MAX_COOLDOWN": "30"})


def test_secrets_never_show_in_a_repr_or_an_error() -> None:
    # given secrets in the environment
    env = {
        "REDIS_URL": "redis://:hunter2-redis@h:6379/0",
        "RELAY_SENTINEL_PASSWORD": "hunter2-sentinel",
        "RELAY_INGRESS_TOKEN": "hunter2-ingress",
        "SENTRY_DSN": "https://hunter2-key@sentry.example/1",
    }
    # when the settings are shown, or refused
    shown = repr(load_settings(env))
    with pytest.raises(SettingsError) as caught:
        load_settings({**env, "REDIS_URL": "htp://:hunter2-redis@h"})
    # then no secret appears
    assert "hunter2" not in shown
    assert "hunter2" not in str(caught.value.code)


def test_every_setting_is_documented_with_its_variable() -> None:
    assert len({spec.env for spec in SPECS}) == len(SPECS)
    for spec in SPECS:
        assert spec.doc.endswith((".", ")")), spec.env
        assert spec.env.isupper()
