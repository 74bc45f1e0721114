"""Reliability tests run real workers against the sandbox, like the integration tests."""
