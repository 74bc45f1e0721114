"""The registry of target kinds, keyed by the `kind` of a configured target."""

from tasks.targets import medallia, salesforce
from tasks.targets.base import TargetKind

TARGET_KINDS: dict[str, TargetKind] = {
    salesforce.KIND.name: salesforce.KIND,
    medallia.KIND.name: medallia.KIND,
}

__all__ = ["TARGET_KINDS", "TargetKind"]
