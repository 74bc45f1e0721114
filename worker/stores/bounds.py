"""What a bounded store answers when it is full: the inbox (RELAY_INBOX_MAX), and a source's
quotas at the ingress (receipts a second, receipts waiting for a record)."""

from __future__ import annotations


class InboxFull(Exception):
    """The inbox holds RELAY_INBOX_MAX events: workers are not keeping up (or not running)."""

    def __init__(self, queued: int, limit: int) -> None:
        self.queued = queued
        super().__init__(
            f"the inbox is full ({limit} events waiting, RELAY_INBOX_MAX): {queued} queued, "
            "the rest not; check that workers run (`relay status`), then push the rest again"
        )


class QuotaExceeded(Exception):
    """A source sent more than its quota allows (`reason`: "rate", receipts a second, or
    "waiting", receipts waiting for a record); nothing of the request was stored. The provider
    may try again in `retry_after` seconds."""

    def __init__(self, source: str, reason: str, retry_after: int) -> None:
        self.source, self.reason, self.retry_after = source, reason, max(1, retry_after)
        what = "receipts_per_second" if reason == "rate" else "max_waiting"
        super().__init__(f"source {source} is past its quota ({what}); retry in {retry_after} s")
