"""A small PromQL evaluator for the fleet-wide alert rules (no promtool here): label-less
expressions over sampled series, as Prometheus evaluates them.

Grammar covered: numbers; a metric name (its series aggregated by the enclosing max/min/sum);
max(...), min(...), sum(...); min_over_time, max_over_time, resets over a subquery
`expr[RANGE:STEP]`; comparisons (filtering: `a > b` keeps a where it holds); `and`, `or`;
+ - * /. An instant value is a float, or None for an empty vector.

Semantics kept from Prometheus: an instant selector takes a series' latest sample within the
5-minute lookback; a subquery evaluates its expression at the multiples of STEP inside
(t - RANGE, t]; `resets` counts decreases between consecutive points; an alert fires once its
expression has been non-empty at every evaluation for its `for` duration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

Series = Sequence[tuple[float, float]]  # (time, value), ascending
Value = float | None
LOOKBACK = 300.0
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?[smh]?|[A-Za-z_][A-Za-z0-9_]*|>=|<=|==|!=|[()\[\]:+\-*/<>])")
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass
class Data:
    """The samples of each metric: a list of series (one per scraped target)."""

    metrics: Mapping[str, list[Series]]

    def instant(self, name: str, t: float) -> list[float]:
        found = []
        for series in self.metrics.get(name, []):
            recent = [v for (ts, v) in series if t - LOOKBACK < ts <= t]
            if recent:
                found.append(recent[-1])
        return found


Node = Callable[[Data, float], Value]


def parse(expr: str) -> Node:
    tokens = [t for t in _TOKEN.findall(expr) if t]
    assert "".join(tokens) == re.sub(r"\s+", "", expr), f"cannot read {expr!r}"
    parser = _Parser(tokens)
    node = parser.binary(0)
    assert parser.at == len(tokens), f"left over: {tokens[parser.at :]}"
    return node


_LEVELS = [("or",), ("and",), (">", "<", "==", "!=", ">=", "<="), ("+", "-"), ("*", "/")]


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        assert expected is None or token == expected, f"expected {expected}, got {token!r}"
        self.at += 1
        return token

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.primary()
        left = self.binary(level + 1)
        while self.peek() in _LEVELS[level]:
            op = self.take()
            right = self.binary(level + 1)
            left = _combine(op, left, right)
        return left

    def primary(self) -> Node:
        token = self.take()
        if token == "(":
            node = self.binary(0)
            self.take(")")
            return node
        if re.fullmatch(r"\d+(\.\d+)?", token):
            return lambda data, t, v=float(token): v
        if token in ("max", "min", "sum"):
            self.take("(")
            name = self.take()
            self.take(")")
            node = _aggregate(token, name)
            return self._subquery(node) if self.peek() == "[" else node
        if token in ("min_over_time", "max_over_time", "resets"):
            self.take("(")
            inner = self.binary(0) if self.peek() != "(" else self.primary()
            self.take(")")
            assert isinstance(inner, _Subquery), f"{token} needs a subquery"
            return _over_time(token, inner)
        raise AssertionError(f"not covered: {token}")

    def _subquery(self, node: Node) -> Node:
        self.take("[")
        span = _seconds(self.take())
        self.take(":")
        step = _seconds(self.take())
        self.take("]")
        return _Subquery(node, span, step)


@dataclass
class _Subquery:
    node: Node
    span: float
    step: float

    def points(self, data: Data, t: float) -> list[float]:
        first = math.floor((t - self.span) / self.step) + 1
        times = [k * self.step for k in range(first, math.floor(t / self.step) + 1)]
        return [v for v in (self.node(data, s) for s in times) if v is not None]

    def __call__(self, data: Data, t: float) -> Value:
        raise AssertionError("a range, not an instant value")


def _seconds(text: str) -> float:
    return float(text[:-1]) * _UNITS[text[-1]]


def _aggregate(how: str, name: str) -> Node:
    pick = {"max": max, "min": min, "sum": sum}[how]

    def node(data: Data, t: float) -> Value:
        values = data.instant(name, t)
        return float(pick(values)) if values else None

    return node


def _over_time(how: str, sub: _Subquery) -> Node:
    def node(data: Data, t: float) -> Value:
        points = sub.points(data, t)
        if not points:
            return None
        if how == "resets":
            return float(sum(1 for a, b in pairwise(points) if b < a))
        return min(points) if how == "min_over_time" else max(points)

    return node


def _combine(op: str, left: Node, right: Node) -> Node:
    def node(data: Data, t: float) -> Value:
        a, b = left(data, t), right(data, t)
        if op == "and":
            return a if b is not None else None
        if op == "or":
            return a if a is not None else b
        if a is None or b is None:
            return None
        if op in ("+", "-", "*", "/"):
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else math.inf}[op]
        holds = {">": a > b, "<": a < b, "==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b}
        return a if holds[op] else None

    return node


def firing_times(
    expr: str, hold: float, data: Data, end: float, every: float = 60.0
) -> list[float]:
    """The evaluation times in [0, end] at which an alert on `expr` with `for: hold` fires."""
    node = parse(expr)
    fired, since = [], None
    for k in range(int(end // every) + 1):
        t = k * every
        if node(data, t) is None:
            since = None
            continue
        since = t if since is None else since
        if t - since >= hold:
            fired.append(t)
    return fired
