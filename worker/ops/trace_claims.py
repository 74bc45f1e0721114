"""The ledger's word on a traced event: its claims `e:<event id>` in the message hashes
(`worker.stores.ledger`), delivered when, or held by an envelope now.

They are keyed by target and message id, so with the ids known that is one read each; without,
every message hash is scanned by a script, about a thousand keys per call.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from worker.ops.wanted import Wanted
from worker.stores.connection import key, scan_match, text_of
from worker.stores.ledger import message_key

CHUNK = 1000  # keys read per script call

# KEYS: none. ARGV: cursor, match pattern, count, fields... One SCAN step over the message
# hashes, reading the fields of each key it returns: {next cursor, key, field, value, ...}.
_SCAN_CLAIMS = """
local step = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local out = {step[1]}
for _, k in ipairs(step[2]) do
  for i = 4, #ARGV do
    local v = redis.call('HGET', k, ARGV[i])
    if v then table.insert(out, k); table.insert(out, ARGV[i]); table.insert(out, v) end
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim of a wanted event on one message id."""

    event_id: str
    target: str
    message_id: str
    value: str
    """`d<epoch seconds>` once delivered, `p:<envelope id>` while an envelope holds it."""

    @property
    def delivered_at(self) -> float | None:
        return float(self.value[1:]) if self.value.startswith("d") else None

    @property
    def owner(self) -> str:
        return self.value.removeprefix("p:")


def read_claims(client: redis.Redis, wanted: Wanted, known: list[tuple[str, str]]) -> list[Claim]:
    """The wanted claims of each known (target, message id): one HGETALL each, in a pipeline."""
    pipe = client.pipeline(transaction=False)
    for target, mid in known:
        pipe.hgetall(message_key(target, mid))
    found: list[Claim] = []
    for (target, mid), fields in zip(known, pipe.execute(), strict=True):
        claims = {text_of(f)[2:]: text_of(v) for f, v in fields.items() if text_of(f)[:2] == "e:"}
        chosen = (set(claims) & wanted.ids) | wanted.is_claim(sorted(set(claims) - wanted.ids))
        found += [Claim(eid, target, mid, claims[eid]) for eid in sorted(chosen)]
    return found


def scan_claims(client: redis.Redis, wanted: Wanted) -> tuple[list[Claim], int]:
    """Every message hash holding a claim under one of `wanted.ids`, and how many script
    calls it took."""
    script = client.register_script(_SCAN_CLAIMS)
    prefix = key("msg", "")
    fields = [f"e:{eid}" for eid in sorted(wanted.ids)]
    pattern, cursor, calls, found = scan_match("msg", ""), "0", 0, []
    while True:
        step = [text_of(v) for v in script(args=[cursor, pattern, CHUNK, *fields])]
        cursor, triples = step[0], step[1:]
        calls += 1
        for name, field, value in zip(triples[::3], triples[1::3], triples[2::3], strict=True):
            target, _, mid = name[len(prefix) :].partition(":")
            found.append(Claim(field[2:], target, mid, value))
        if cursor == "0":
            return found, calls
