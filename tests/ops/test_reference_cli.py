"""`relay reference`: the sending side's signed references, from a source's reference_key or a
key in the environment; the key never printed; a target that is not the source's refused."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tasks.upstream.references import read_reference
from tests.config.documents import ENV, GOOD_TOML
from tests.support.cli import run_relay_cli

pytestmark = pytest.mark.timeout(60)
KEY = "the-reference-key-0123456789"
SOURCE = """
[sources.tw]
kind = "twilio"
auth_token = "${TW_TOKEN}"
target = "sf-prod"
reference_key = "${TW_REF_KEY}"
"""
REF = {"message_ids": ["0Mw1"], "channel": "72a6a4ec"}


def relay(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "relay.toml"
    config.write_text(GOOD_TOML + SOURCE)
    env = {**os.environ, **ENV, "RELAY_CONFIG": str(config), "TW_TOKEN": "t", "TW_REF_KEY": KEY}
    return run_relay_cli("reference", *args, env=env, stdin=stdin, timeout=30)


def test_a_sources_key_signs_and_its_targets_are_checked(tmp_path: Path) -> None:
    made = relay(tmp_path, "--source", "tw", json.dumps(REF))
    assert made.returncode == 0, made.stderr
    assert KEY not in made.stdout + made.stderr
    read = read_reference(made.stdout.strip(), KEY)
    assert read is not None and read.signature == "valid" and read.correlation.target is None
    foreign = relay(tmp_path, "--source", "tw", json.dumps({**REF, "target": "medallia-eu"}))
    assert foreign.returncode == 1 and "not one of source 'tw'" in foreign.stderr


def test_a_key_from_the_environment_signs_json_lines_and_says_which_line_was_refused(
    tmp_path: Path,
) -> None:
    lines = json.dumps(REF) + "\n" + '{"channel":"c","mesage_ids":["x"]}\n'
    made = relay(tmp_path, "--key-env", "TW_REF_KEY", "-", stdin=lines)
    assert made.returncode == 1
    (signed,) = made.stdout.splitlines()
    assert read_reference(signed, KEY).signature == "valid"  # type: ignore[union-attr]
    assert "line 2: unknown field(s) in a reference: mesage_ids" in made.stderr


def test_without_a_key_it_is_a_usage_error(tmp_path: Path) -> None:
    assert relay(tmp_path, json.dumps(REF)).returncode == 2
    assert relay(tmp_path, "--key-env", "NO_SUCH_VARIABLE", json.dumps(REF)).returncode == 2
