"""Reliability tests run real workers against the sandbox, like the integration tests."""

from tests.integration.conftest import relay  # noqa: F401
