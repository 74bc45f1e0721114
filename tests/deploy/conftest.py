"""The kustomize overlays, each rendered once per module that asks for it."""

from __future__ import annotations

import pytest

from tests.deploy.kube import OVERLAYS, Docs, render


@pytest.fixture(scope="module", params=OVERLAYS, ids=lambda p: p.name)
def rendered(request: pytest.FixtureRequest) -> Docs:
    """One overlay rendered by `kubectl kustomize`, as a list of objects."""
    return render(request.param)
