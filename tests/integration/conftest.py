"""The `relay` fixture lives in tests/conftest.py; it is named here too for older imports."""

from tests.conftest import relay

__all__ = ["relay"]
