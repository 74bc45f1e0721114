"""The checks that span settings: each value may be fine alone and wrong beside another."""

from __future__ import annotations

from typing import Any

from worker.settings.cells import cells_problems
from worker.settings.edge import edge_problems


def cross_problems(settings: Any, redis_url_given: bool) -> list[str]:
    """What is wrong between settings (breaker, edge bounds, cells)."""
    problems: list[str] = []
    if settings.breaker_max_cooldown < settings.breaker_cooldown:
        problems.append(
            f"RELAY_BREAKER_MAX_COOLDOWN ({settings.breaker_max_cooldown:g}) must be at least "
            f"RELAY_BREAKER_COOLDOWN ({settings.breaker_cooldown:g})"
        )
    return problems + edge_problems(settings) + cells_problems(settings, redis_url_given)
