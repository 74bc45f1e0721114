"""`relay sandbox`: local look-alikes of the Salesforce and Medallia APIs for tests and dev.

Both APIs are served on one port (`{url}/salesforce`, `{url}/medallia`); every request is checked
strictly against the vendor documents as corrected by the vendors' own OpenAPI files, answered like
the vendor would, recorded, and, when told by a `Fault`, made to fail, slow down, ask for a retry,
redirect, drop, truncate its answer or trickle it forever.
"""

from worker.dev.sandbox.faults import Fault
from worker.dev.sandbox.server import Sandbox

__all__ = ["Fault", "Sandbox"]
