"""The cells' settings: the Redis of every cell, in a fixed order, and (while a cell is being
added) the list as it was before. Fields of `worker.settings.Settings` (its base class)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.settings.spec import REDIS_SCHEMES, safe_url, setting
from worker.settings.upgrade import UpgradeSettings

MAX_CELLS = 256


@dataclass(frozen=True, slots=True)
class CellSettings(UpgradeSettings):
    """Where the cells are (see each field's `setting`)."""

    cells: str | None = setting(
        "RELAY_CELLS",
        None,
        "text",
        "The cells' Redis URLs, comma-separated, in a fixed order that only ever grows at its "
        "end (each message's cell is computed from the count). Unset: one cell, REDIS_URL. A "
        "worker serves the cell whose address is its REDIS_URL's (unset: the first); each "
        "component may name the cells with its own Redis user.",
        secret=True,
    )
    cells_before: str | None = setting(
        "RELAY_CELLS_BEFORE",
        None,
        "text",
        "While a cell is being added: RELAY_CELLS as it was, for one RELAY_DEDUP_WINDOW. A "
        "message whose cell changed stays in its old cell while that cell holds its history.",
        secret=True,
    )


def cell_urls(text: str | None) -> list[str]:
    """The URLs of a comma-separated list (empty for unset)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def default_redis_url(values: dict[str, Any]) -> bool:
    """Whether REDIS_URL was given; when it was not and RELAY_CELLS is, REDIS_URL becomes the
    first cell's (the CLI's and the ingress's home: their own dead letters and counts)."""
    if "redis_url" in values:
        return True
    if cells := cell_urls(values.get("cells")):
        values["redis_url"] = cells[0]
    return False


def cell_address(url: str) -> str:
    """A cell's URL without its user and password: what names the cell, whichever Redis user
    a component connects as (each may have its own)."""
    return ";".join(_address(part.strip()) for part in url.split(";"))


def _address(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    head, slash, tail = rest.partition("/")
    return f"{scheme}://{head.rpartition('@')[2]}{slash}{tail}"


def cell_index(urls: list[str], url: str) -> int | None:
    """The index of the cell `url` names (by address), or None."""
    addresses = [cell_address(u) for u in urls]
    found = cell_address(url)
    return addresses.index(found) if found in addresses else None


def cells_problems(settings: Any, redis_url_given: bool) -> list[str]:
    """What is wrong with the cells' settings (never showing a password)."""
    problems: list[str] = []
    cells, before = cell_urls(settings.cells), cell_urls(settings.cells_before)
    for env, urls in (("RELAY_CELLS", cells), ("RELAY_CELLS_BEFORE", before)):
        for url in urls:
            if not url.startswith(REDIS_SCHEMES):
                problems.append(f"{env}: {safe_url(url)!r} must start with one of {REDIS_SCHEMES}")
        if len({cell_address(u) for u in urls}) != len(urls):
            problems.append(f"{env} names a cell twice")
        if len(urls) > MAX_CELLS:
            problems.append(f"{env} names {len(urls)} cells; at most {MAX_CELLS}")
    if before and not cells:
        problems.append("RELAY_CELLS_BEFORE needs RELAY_CELLS")
    if before and [cell_address(u) for u in cells[: len(before)]] != [
        cell_address(u) for u in before
    ]:
        problems.append(
            "RELAY_CELLS must begin with RELAY_CELLS_BEFORE, in its order: cells are only "
            "ever added at the end"
        )
    if cells and redis_url_given and cell_index(cells, settings.redis_url) is None:
        problems.append(
            f"REDIS_URL ({safe_url(settings.redis_url)}) must be one of RELAY_CELLS: a worker "
            "serves one of the cells"
        )
    return problems
