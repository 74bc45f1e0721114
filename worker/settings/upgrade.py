"""What a rolling upgrade from the previous release needs while both run on one Redis. A field
of `worker.settings.Settings` (through its base class), declared like every other setting."""

from __future__ import annotations

from dataclasses import dataclass

from worker.settings.edge import EdgeSettings
from worker.settings.spec import setting


@dataclass(frozen=True, slots=True)
class UpgradeSettings(EdgeSettings):
    """The upgrade window's settings (see each field's `setting`)."""

    compat_0_1: str = setting(
        "RELAY_COMPAT_0_1",
        "on",
        "choice",
        "For the upgrade from 0.1.0 only: `on` while 0.1.0 workers may still run (their claims "
        "and done marks are read and written, dead letters stay in the form 0.1.0's CLI reads), "
        "`read` for one RELAY_DEDUP_WINDOW after the last one stopped (their marks are still "
        "honoured), then `off`.",
        choices=("on", "read", "off"),
    )
