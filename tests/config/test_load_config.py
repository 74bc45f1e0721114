"""Loading the targets file from disk: the file, the process environment, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.documents import (
    ENV,
    GOOD_TOML,
    SF_TOKEN,
)
from worker.config import ConfigError, load_config

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
