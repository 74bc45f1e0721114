"""Idempotency and ordering, kept in Redis and shared by every worker.

One hash per target and message id (`msg:<target>:<id>`) holds both, so that an event costs
a few Redis calls per message id, made inside one script call per bundle
(`worker.stores.ledger_scripts`):

- **Claims**, field `e:<event_id>`: `p:<envelope id>` while an envelope works on that event's
  message id, `d<epoch seconds>` once it was delivered. A message id that is done, or that
  another envelope holds, is not posted (a duplicate); one that ended as a dead letter is
  forgotten (only the claim of the envelope that ended so), so a replay or a corrected resend
  can claim it again. A Salesforce failure is delivered, retried and dead-lettered message id
  by message id, so a claim is per message id too. Every claim and every done mark extends the
  hash's life, never shortens it: a done mark is remembered RELAY_DEDUP_WINDOW seconds from
  the moment it was written, whatever came before it.
- **Order**, fields `o` and `r`: the newest status *delivered* for the message (occurred ms,
  rank). A status older than that is stale: skipped and counted. The mark is written when a
  status is delivered, never before, so a newer status that ends as a dead letter does not
  silence an older one that can still be delivered.
- **In flight**, field `f` (`<until>:<envelope id>`): the one ordering status of the message
  being sent right now. Admission reserves it for the newest status of a bundle; an older one
  of the same bundle, or any status while another envelope's reservation runs, is held (put
  off briefly, unsent): once the one in flight is delivered it is stale, once that one is
  parked or dead-lettered it goes. So two statuses of a message are never on their way to a
  target at once, and the newest one is the last posted. Done marks, parking and dead letters
  release the reservation of their envelope.
- **The release before** (0.1.0) claimed per event, `event:<target>:<event_id>` =
  `pending:<envelope id>` or `done`, and reads nothing else. While RELAY_COMPAT_0_1 is `on` or
  `read`, such a claim stands for the claims of message ids whose hash has none (a copy of an
  event 0.1.0 delivered is a duplicate); while it is `on`, admission writes one too, so that a
  0.1.0 worker counts copies of what this release took duplicates. Forgetting drops it.
- **Format**, field `v` (`ledger_scripts.FORMAT`): a worker that meets a newer version leaves
  the event for a worker that knows it (`Admitted.newer`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import redis

from worker.settings import Settings, get_settings
from worker.stores.connection import get_redis, key, run_script
from worker.stores.ledger_scripts import ADMIT, MARK

COMPAT = {"off": 0, "read": 1, "on": 2}
"""RELAY_COMPAT_0_1 as the scripts take it."""
# Order of statuses for one message: failed/undelivered are final.
RANK = {"sent": 0, "delivered": 1, "read": 2, "failed": 3, "undelivered": 3}
RESERVE_MARGIN = 60.0
"""Seconds an in-flight reservation outlives the longest a bundle may send (RELAY_TASK_BUDGET
twice over covers its requests' own timeouts): only a reservation whose owner vanished
without settling (a bug) ever runs that long; a dead worker's bundle, taken up by another,
comes back under the same envelope ids and renews it."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of a bundle to admit: claim its message ids for envelope `owner` for `hold`
    seconds and, with an `occurred_ms` and a `status`, check their status order."""

    target: str
    event_id: str
    owner: str
    hold: float
    message_ids: tuple[str, ...]
    occurred_ms: int = 0
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    """The ledger's answer for one entry: ids to send, ids a newer status overtook, whether a
    newer relay's format was met (then nothing was claimed), and ids held back while another
    status of their message is (or goes) in flight."""

    fresh: list[str]
    stale: list[str]
    newer: bool = False
    held: list[str] = field(default_factory=list)

    @property
    def duplicate(self) -> bool:
        """Every id was delivered already or is in another envelope's hands."""
        return not self.fresh and not self.stale and not self.newer and not self.held


Mode = Literal["done", "order", "release", "forget", "any"]


@dataclass(frozen=True, slots=True)
class Done:
    """A change to message ids of an event at its end (see MARK's modes): by default done
    marks; with `order` ((occurred_ms, status) of a delivered status) they raise the newest
    status too. `owner`, the envelope that held them, loses its reservation (and, forgetting,
    its claims)."""

    target: str
    event_id: str
    message_ids: tuple[str, ...]
    order: tuple[int, str] | None = None
    owner: str = ""
    mode: Mode | None = None

    @property
    def how(self) -> Mode:
        return self.mode or ("order" if self.order else "done")


def _life(settings: Settings) -> float:
    """Seconds a reservation lasts; also what every extended life gets on top (a mark that
    voids its envelope's running reservation then needs no TTL check)."""
    return 2 * settings.task_budget + RESERVE_MARGIN


def message_key(target: str, message_id: str) -> str:
    """The hash of a message's claims, newest delivered status and format."""
    return key("msg", target, message_id)


def old_claim_key(target: str, event_id: str) -> str:
    """0.1.0's claim of an event (`pending:<envelope id>` or `done`), read and written during
    the upgrade from it (RELAY_COMPAT_0_1)."""
    return key("event", target, event_id)


class EventLedger:
    """Claims message ids and orders statuses (`admit`), then marks them done, releases or
    forgets them (`mark`)."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or get_redis()
        self._admit = self.redis.register_script(ADMIT)
        self._mark = self.redis.register_script(MARK)

    def admit(self, entries: list[Entry]) -> list[Admitted]:
        """Per entry, the message ids this envelope may send, those that are stale and those
        held back (one script call)."""
        if not entries:
            return []
        settings = get_settings()
        window = settings.dedup_window
        keys: list[str] = []
        compat = COMPAT[settings.compat_0_1]
        args: list[str | int] = [len(entries), int(time.time()), int(_life(settings)), compat]
        for e in entries:
            keys += [message_key(e.target, mid) for mid in e.message_ids]
            order = 1 if e.status is not None else 0
            ttl = int(max(window, e.hold)) or 1
            args += [e.owner, ttl, e.occurred_ms, RANK.get(e.status or "", 0), order]
            args += [e.event_id, len(e.message_ids)]
        keys += [old_claim_key(e.target, e.event_id) for e in entries] if compat else []
        out = []
        for e, (fresh, stale, newer, held) in zip(entries, self._admit(keys, args), strict=True):
            ids = e.message_ids
            out.append(
                Admitted(
                    [ids[int(i) - 1] for i in fresh],
                    [ids[int(i) - 1] for i in stale],
                    bool(int(newer)),
                    [ids[int(i) - 1] for i in held],
                )
            )
        return out

    def mark(self, marks: Sequence[Done], pipe: redis.Redis | None = None) -> None:
        """Apply `marks` in one call (or queue that on `pipe` to go with other writes)."""
        if not marks:
            return
        settings = get_settings()
        keys: list[str] = []
        compat = COMPAT[settings.compat_0_1]
        args: list[str | int] = [len(marks), int(settings.dedup_window), int(_life(settings))]
        args += [compat, int(time.time())]
        for m in marks:
            keys += [message_key(m.target, mid) for mid in m.message_ids]
            occurred, status = m.order or (0, "sent")
            args += [m.event_id, occurred, RANK[status], m.how, m.owner, len(m.message_ids)]
        keys += [old_claim_key(m.target, m.event_id) for m in marks] if compat else []
        run_script(self._mark, keys, args, pipe)

    def forget(
        self,
        target: str,
        event_id: str,
        mids: Sequence[str],
        owner: str,
        pipe: redis.Redis | None = None,
    ) -> None:
        """Drop `owner`'s claims and reservations: nothing more will be sent for these ids
        by it, a replay may claim them."""
        self.mark([Done(target, event_id, tuple(mids), owner=owner, mode="forget")], pipe)
