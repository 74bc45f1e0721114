"""RELAY_CELLS and RELAY_CELLS_BEFORE: read, checked, and the default of one cell unchanged."""

from __future__ import annotations

import pytest

from worker.cells.cells import Cells, get_cells
from worker.settings import SettingsError, get_settings, load_settings

A, B, C = "redis://a:6379/0", "redis://:pw@b:6379/0", "redis://c:6379/0"


def test_unset_is_one_cell_of_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_CELLS", raising=False)
    monkeypatch.setenv("REDIS_URL", B)
    get_settings.cache_clear()
    try:
        assert get_cells() == Cells((B,), (), 0)
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("env", "urls", "mine"),
    [
        ({"RELAY_CELLS": f"{A},{B},{C}"}, (A, B, C), 0),
        ({"RELAY_CELLS": f" {A} , {B},{C}, ", "REDIS_URL": C}, (A, B, C), 2),
        ({"RELAY_CELLS": f"{A},{B}", "REDIS_URL": B}, (A, B), 1),
        # each component may connect as its own Redis user: a cell is named by its address
        ({"RELAY_CELLS": f"{A},{B}", "REDIS_URL": "redis://u:pw2@b:6379/0"}, (A, B), 1),
    ],
)
def test_cells_are_read_in_order_and_a_worker_serves_its_redis_url(
    env: dict[str, str], urls: tuple[str, ...], mine: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RELAY_CELLS", "REDIS_URL", "RELAY_CELLS_BEFORE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        cells = get_cells()
        assert (cells.urls, cells.mine, cells.growing) == (urls, mine, False)
        assert get_settings().redis_url in (urls[mine], env.get("REDIS_URL"))
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"RELAY_CELLS": f"{A},http://x"}, "RELAY_CELLS: 'http://x' must start with one of"),
        ({"RELAY_CELLS": f"{A},{A}"}, "RELAY_CELLS names a cell twice"),
        ({"RELAY_CELLS": f"{A},redis://u:p@a:6379/0"}, "RELAY_CELLS names a cell twice"),
        ({"RELAY_CELLS": f"{A},{B}", "REDIS_URL": "redis://:pw@b:6379/1"}, "must be one of"),
        ({"RELAY_CELLS": f"{A},{B}", "REDIS_URL": C}, "REDIS_URL (redis://c:6379/0) must be one"),
        ({"RELAY_CELLS_BEFORE": A}, "RELAY_CELLS_BEFORE needs RELAY_CELLS"),
        ({"RELAY_CELLS": f"{A},{B}", "RELAY_CELLS_BEFORE": B}, "must begin with RELAY_CELLS_BEF"),
    ],
)
def test_bad_cells_are_refused_saying_why(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert says in str(caught.value)


def test_a_password_in_a_cell_is_never_shown() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"RELAY_CELLS": "redis://:hunter2@a:1/0,htp://:hunter2@b"})
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(load_settings({"RELAY_CELLS": "redis://:hunter2@a:1/0"}))


def test_growing_is_said_while_the_list_before_is_shorter() -> None:
    settings = load_settings({"RELAY_CELLS": f"{A},{B},{C}", "RELAY_CELLS_BEFORE": f"{A},{B}"})
    assert settings.cells_before == f"{A},{B}"
    assert Cells((A, B, C), (A, B), 0).growing and not Cells((A, B), (A, B), 0).growing
