"""One callback carries at most `limit` receipts (a source's `max_receipts`, default 1,000):
past it the normalizer refuses the whole callback before making a single receipt."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tasks.upstream import NORMALIZERS, TooManyReceipts
from tasks.upstream.receipts import DEFAULT_MAX_RECEIPTS
from tasks.upstream.request import RawRequest
from tests.tasks.upstream.builders import infobip_result, json_request, whatsapp_status


def infobip(n: int) -> RawRequest:
    result = infobip_result("DELIVERED_TO_HANDSET", "DELIVERED")
    return json_request({"results": [result] * n})


def whatsapp(entries: int, per_entry: int) -> RawRequest:
    document = whatsapp_status()
    (entry,) = document["entry"]
    statuses = entry["changes"][0]["value"]["statuses"] * per_entry
    entry["changes"][0]["value"]["statuses"] = statuses
    document["entry"] = [entry] * entries
    return json_request(document)


@pytest.mark.parametrize(
    ("kind", "build", "receipts"),
    [
        pytest.param("infobip", lambda: infobip(1000), 1000, id="infobip-1000"),
        pytest.param("whatsapp", lambda: whatsapp(10, 100), 1000, id="whatsapp-10x100"),
    ],
)
def test_up_to_the_default_limit_every_receipt_is_made(
    kind: str, build: Callable[[], RawRequest], receipts: int
) -> None:
    assert DEFAULT_MAX_RECEIPTS == 1000
    assert len(NORMALIZERS[kind](build(), DEFAULT_MAX_RECEIPTS)) == receipts


@pytest.mark.parametrize(
    ("kind", "build"),
    [
        pytest.param("infobip", lambda: infobip(1001), id="infobip-1001"),
        pytest.param("whatsapp", lambda: whatsapp(11, 91), id="whatsapp-11x91"),
        pytest.param("whatsapp", lambda: whatsapp(1, 1001), id="whatsapp-1x1001"),
    ],
)
def test_past_the_limit_the_whole_callback_is_refused(
    kind: str, build: Callable[[], RawRequest]
) -> None:
    with pytest.raises(TooManyReceipts) as caught:
        NORMALIZERS[kind](build(), DEFAULT_MAX_RECEIPTS)
    assert "more than 1000 receipts" in str(caught.value)


def test_a_source_may_set_a_smaller_limit() -> None:
    assert len(NORMALIZERS["infobip"](infobip(3), 3)) == 3
    with pytest.raises(TooManyReceipts):
        NORMALIZERS["infobip"](infobip(4), 3)
