"""Upstream receipts: providers' status callbacks made into the relay's canonical events.

Pure, like the rest of `tasks/`: a `RawRequest` in, `Receipt`s out (one normalizer per provider
kind, chosen from `NORMALIZERS`), signatures checked over the raw bytes (`signatures`), and a
receipt with its correlation made into a canonical event (`events`).
"""

from collections.abc import Callable

from tasks.upstream import infobip, smpp_dlr, twilio, vonage, whatsapp
from tasks.upstream.receipts import Receipt, TooManyReceipts, Unreadable
from tasks.upstream.request import RawRequest

Normalizer = Callable[[RawRequest, int], list[Receipt]]
"""(request, the most receipts to make) -> receipts; `TooManyReceipts` past that many."""
NORMALIZERS: dict[str, Normalizer] = {
    twilio.KIND: twilio.normalize,
    whatsapp.KIND: whatsapp.normalize,
    vonage.KIND: vonage.normalize,
    infobip.KIND: infobip.normalize,
    smpp_dlr.KIND: smpp_dlr.normalize,
}
KINDS: tuple[str, ...] = tuple(NORMALIZERS)

__all__ = ["KINDS", "NORMALIZERS", "RawRequest", "Receipt", "TooManyReceipts", "Unreadable"]
