"""The process's one `Relay`, built lazily from the configuration file."""

from __future__ import annotations

import threading

from worker.config import load_config
from worker.delivery.pipeline import Relay
from worker.settings import get_settings

_lock = threading.Lock()
_relay: Relay | None = None


def get_relay() -> Relay:
    """The relay of this process; raises `ConfigError` if the configuration is bad."""
    global _relay
    with _lock:
        if _relay is None:
            _relay = Relay(load_config(get_settings().config_path))
        return _relay
