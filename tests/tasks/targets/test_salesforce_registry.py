"""The Salesforce kind in the registry, and its target-table options."""

from __future__ import annotations

from tasks.targets import TARGET_KINDS
from tasks.targets.salesforce import KIND


def test_registry_maps_salesforce_kind() -> None:
    # given / when the registry is looked up by kind
    kind = TARGET_KINDS["salesforce"]
    # then it is this module's kind
    assert kind is KIND
    assert kind.name == "salesforce"
