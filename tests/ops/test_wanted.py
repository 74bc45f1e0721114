"""How `relay trace` recognises the events the ingress made of a provider's message: the ids
it works out are the ingress's own, a failure's error code included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.upstream.events import event_id
from tasks.upstream.receipts import Receipt, ReceiptError, code_of
from worker.ops.wanted import by_receipt

STATUSES = ("sent", "delivered", "read", "failed", "undelivered")


def _ingress_id(source: str, pmid: str, status: str, code: str | None) -> str:
    error = ReceiptError(code_of(code), "x") if code is not None else None
    return event_id(source, Receipt("kind", pmid, status, status, error=error))


@given(
    source=st.text(min_size=1, max_size=30),
    pmid=st.text(min_size=1, max_size=80),
    status=st.sampled_from(STATUSES),
    code=st.one_of(st.none(), st.integers(0, 999_999).map(str)),
)
def test_an_event_held_whole_is_recognised_by_its_status_and_code(
    source: str, pmid: str, status: str, code: str | None
) -> None:
    eid = _ingress_id(source, pmid, status, code)
    failure = status in ("failed", "undelivered")
    event = {"event_id": eid, "status": status}
    if failure:
        event["error"] = {"code": code_of(code) if code is not None else 0, "name": "x"}
    assert by_receipt(source, pmid).is_event(event)
    assert not by_receipt(source, pmid + "x").is_event(event)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("sent", None),
        ("failed", None),
        ("failed", "30003"),
        ("undelivered", "131047"),
        ("failed", "000"),
        ("undelivered", "0aF"),
    ],
    ids=["sent", "failed-no-code", "twilio", "whatsapp", "smpp-zero", "smpp-hex"],
)
def test_a_delivered_claim_is_recognised_by_its_id_alone(status: str, code: str | None) -> None:
    # given only a claim's event id (a delivery keeps no event), beside another message's
    mine = _ingress_id("tw", "SM0001", status, code)
    other = _ingress_id("tw", "SM0002", status, code)
    wanted = by_receipt("tw", "SM0001")

    # when the claims are sorted out, then only its own is taken
    claimed = (wanted.ids & {mine, other}) | wanted.is_claim(sorted({mine, other} - wanted.ids))
    assert claimed == {mine}
