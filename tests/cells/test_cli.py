"""The operator's commands over three cells: each finds what any cell holds and says which."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.cells.conftest import Fleet
from tests.cells.test_ways_in import md_posts
from tests.support.harness import event, wait_for
from tests.support.ingress import md_reference, sf_reference
from worker.dev.callbacks import Message
from worker.intake.push import push_events
from worker.stores.deadletters import DeadLetter, DeadLetterStore

pytestmark = pytest.mark.timeout(240)


def undeliverable(mid: str) -> dict[str, Any]:
    """An event Medallia cannot take (its error code is no integer): a dead letter at once."""
    return event("md", "failed", mid, error={"code": "E-7", "name": "Gone"})


def one_per_cell(fleet: Fleet) -> list[str]:
    """A message id of the test's own in each cell, in cell order."""
    found: dict[int, str] = {}
    while len(found) < 3:
        mid = f"dl-{uuid.uuid4().hex[:10]}"
        found.setdefault(fleet.relay.cell_of("md", mid), mid)
    return [found[cell] for cell in range(3)]


def letters_of(fleet: Fleet, mids: list[str]) -> list[list[DeadLetter]]:
    def mine() -> list[DeadLetter]:
        return [d for d in DeadLetterStore().iter() if d.event.get("message_ids") == mids[:1]]

    return [fleet.relay.in_cell(cell, mine) for cell in range(3)]


@pytest.fixture(scope="module")
def letters(fleet: Fleet) -> list[DeadLetter]:
    """A dead letter in each cell."""
    mids = one_per_cell(fleet)
    assert push_events([undeliverable(m) for m in mids]) == 3
    found: list[DeadLetter] = []

    def each_cell_has_its_own() -> bool:
        found[:] = [
            d
            for cell, mid in enumerate(mids)
            for d in fleet.relay.in_cell(cell, lambda: list(DeadLetterStore().iter()))
            if d.event.get("message_ids") == [mid]
        ]
        return len(found) == 3

    wait_for(each_cell_has_its_own, 60, "a dead letter in each cell")
    return found


def test_dlq_list_shows_every_cell_under_its_name(fleet: Fleet, letters: list[DeadLetter]) -> None:
    shown = fleet.relay.cli("dlq", "list", "--wide")
    assert shown.returncode == 0, shown.stderr
    for cell, letter in enumerate(letters):
        assert f"== cell {cell} (redis://" in shown.stdout
        section = shown.stdout.split(f"== cell {cell} ")[1].split("== cell ")[0]
        assert letter.id in section
    records = fleet.relay.cli_json("dlq", "list")
    cells = {r["id"]: r["cell"] for r in records}
    assert [cells[letter.id] for letter in letters] == [0, 1, 2]


@pytest.mark.parametrize("cell", [0, 1, 2])
def test_dlq_show_finds_a_letter_in_any_cell(
    fleet: Fleet, letters: list[DeadLetter], cell: int
) -> None:
    letter = letters[cell]
    shown = fleet.relay.cli("dlq", "show", letter.id)
    assert shown.returncode == 0, shown.stderr
    assert f"== cell {cell} " in shown.stdout and letter.id in shown.stdout
    assert "no dead letter" not in shown.stdout + shown.stderr
    document = fleet.relay.cli_json("dlq", "show", letter.id)
    assert document["cells"][0]["cell"] == cell and document["cells"][0]["id"] == letter.id


def test_an_id_no_cell_holds_is_said_once(fleet: Fleet) -> None:
    shown = fleet.relay.cli("dlq", "show", "no-such-letter")
    assert shown.returncode == 1
    assert shown.stderr.count("no dead letter with id 'no-such-letter'") == 1


def test_trace_and_status_say_which_cell(fleet: Fleet, letters: list[DeadLetter]) -> None:
    letter = letters[2]
    traced = fleet.relay.cli("trace", str(letter.event_id))
    assert traced.returncode == 0, traced.stderr
    assert "== cell 2 " in traced.stdout and letter.id in traced.stdout
    status = fleet.relay.cli("status")
    assert status.returncode == 0, status.stderr
    assert all(f"== cell {cell} " in status.stdout for cell in range(3))
    report = fleet.relay.cli_json("status")
    assert [c["cell"] for c in report["cells"]] == [0, 1, 2]
    listed = fleet.relay.cli("retries", "list")
    assert listed.returncode == 0 and listed.stdout.count("== cell ") == 3


def test_replay_and_purge_act_in_the_cell_that_holds_each_letter(
    fleet: Fleet, letters: list[DeadLetter]
) -> None:
    ids = [d.id for d in letters[1:]]
    replayed = fleet.relay.cli("dlq", "replay", *ids)
    assert replayed.returncode == 0, replayed.stderr
    # each went back through its own cell's broker and worker, and failed there again
    again = [m for m in (letters[1].event["message_ids"], letters[2].event["message_ids"])]

    def back() -> bool:
        return all(
            any(
                d.event.get("message_ids") == mids and d.id not in ids
                for d in fleet.relay.in_cell(cell, lambda: list(DeadLetterStore().iter()))
            )
            for cell, mids in zip((1, 2), again, strict=True)
        )

    wait_for(back, 60, "the replayed letters dead again in their own cells")
    purged = fleet.relay.cli("dlq", "purge", letters[0].id, "missing-id")
    assert purged.returncode == 1 and "no cell holds 'missing-id'" in purged.stderr
    assert fleet.relay.in_cell(0, lambda: DeadLetterStore().get(letters[0].id)) is None


def test_a_receipts_dead_letter_replays_where_its_record_is(fleet: Fleet) -> None:
    # given a forbidden receipt (kept in the first cell) whose record belongs in another cell
    pmid = next(
        p
        for p in (f"M{uuid.uuid4().hex[:10]}" for _ in range(100))
        if fleet.relay.cells.of_receipt("ib", p) != 0
    )
    victim, own = f"v-{uuid.uuid4().hex[:8]}", f"own-{uuid.uuid4().hex[:8]}"
    forged = Message(pmid, "REJECTED_NETWORK", error_code="9", reference=sf_reference(victim))
    assert fleet.ingress.post("ib", forged)[1]["forbidden"] == 1
    [letter] = [
        d
        for d in fleet.relay.in_cell(0, lambda: list(DeadLetterStore().iter(reason="forbidden")))
        if d.event["receipt"]["provider_message_id"] == pmid
    ]
    # when its record is registered (in its own cell) and the letter replayed
    record = {"source": "ib", "provider_message_id": pmid, **md_reference(own)}
    assert fleet.ingress.correlate(record)[0] == 200
    replayed = fleet.relay.cli("dlq", "replay", letter.id)
    assert replayed.returncode == 0, replayed.stderr
    # then it met its record there and was posted
    assert "correlated, queued" in replayed.stdout
    wait_for(lambda: bool(md_posts(fleet, {own}).get(own)), 60, "the replayed receipt posted")
