"""Echoed references: the signed wire form, and who may use a reference (the source's own
targets; under a reference_key only a validly signed one). Table-driven, then properties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.upstream.correlation import Correlation, TooManyIds
from tasks.upstream.references import judge, read_reference, sign_reference

KEY = b"reference-key-0123456789abcdef"
REF = {"target": "sf", "message_ids": ["0Mw1"], "channel": "c"}
PLAIN = json.dumps(REF, separators=(",", ":"))
SIGNED = sign_reference(REF, KEY)
OWN = frozenset({"sf"})


def test_a_signed_reference_is_the_compact_json_a_dot_and_43_characters_of_base64url() -> None:
    text, _, signature = SIGNED.rpartition(".")
    assert text == PLAIN and len(signature) == 43
    assert set(signature) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert sign_reference(PLAIN, KEY) == SIGNED  # a text is signed exactly as given


def test_reading_a_reference_tells_its_correlation_and_its_signature() -> None:
    expected = Correlation(("0Mw1",), "c", "sf")
    assert read_reference(SIGNED, KEY) == (expected, "valid")
    assert read_reference(SIGNED, b"another key") == (expected, "invalid")
    assert read_reference(PLAIN, KEY) == (expected, "absent")
    assert read_reference(PLAIN + "..", KEY) == (expected, "invalid")
    assert read_reference(SIGNED, None) == (expected, "unchecked")
    assert read_reference(SIGNED[:-1] + ("A" if SIGNED[-1] != "A" else "B"), KEY) == (
        expected,
        "invalid",
    )


@pytest.mark.parametrize(
    "text", [None, "", "abc", "{not json", '{"channel":"c"}', "[1]", PLAIN + "x", "x" + SIGNED]
)
def test_what_is_not_a_reference_reads_as_none(text: str | None) -> None:
    assert read_reference(text, KEY) is None


def test_a_reference_with_more_than_100_message_ids_is_refused_whole() -> None:
    too_many = {**REF, "message_ids": [f"m{i}" for i in range(101)]}
    with pytest.raises(TooManyIds):
        read_reference(json.dumps(too_many), None)
    with pytest.raises(TooManyIds):
        judge(sign_reference(too_many, KEY), OWN, "sf", KEY)
    hundred = {**REF, "message_ids": [f"m{i}" for i in range(100)]}
    assert judge(json.dumps(hundred), OWN, None, None).correlation is not None


def ref(**fields: Any) -> str:
    return json.dumps({k: v for k, v in {**REF, **fields}.items() if v is not None})


# (reference, own targets, default target, key) -> where it routes, or why it is forbidden
VERDICTS = [
    pytest.param(ref(), {"sf"}, None, None, "sf", None, id="own-target"),
    pytest.param(ref(target="md"), {"sf"}, "sf", None, None, "names target 'md'", id="foreign"),
    pytest.param(ref(target="md"), {"sf", "md"}, "sf", None, "md", None, id="one-of-targets"),
    pytest.param(ref(target=None), {"sf"}, "sf", None, "sf", None, id="default-target"),
    pytest.param(ref(target=None), {"sf", "md"}, None, None, None, None, id="no-target-no-default"),
    pytest.param(ref(), set(), None, None, None, None, id="a-source-without-targets-ignores"),
    pytest.param(ref(), {"sf"}, "sf", KEY, None, "not signed", id="unsigned-under-a-key"),
    pytest.param(
        sign_reference(REF, b"x"), {"sf"}, "sf", KEY, None, "signature", id="forged-under-a-key"
    ),
    pytest.param(SIGNED, {"sf"}, "sf", KEY, "sf", None, id="signed-under-a-key"),
    pytest.param(
        sign_reference({**REF, "target": "md"}, KEY),
        {"sf"},
        "sf",
        KEY,
        None,
        "names target 'md'",
        id="signed-but-foreign",
    ),
    pytest.param(SIGNED, {"sf"}, "sf", None, "sf", None, id="signed-without-a-key"),
    pytest.param("free text", {"sf"}, "sf", KEY, None, None, id="not-a-reference"),
]


@pytest.mark.parametrize(("text", "own", "default", "key", "routes", "why"), VERDICTS)
def test_who_may_use_a_reference(
    text: str, own: set[str], default: str | None, key: bytes | None, routes: str | None, why: str
) -> None:
    verdict = judge(text, frozenset(own), default, key)
    assert (verdict.correlation.target if verdict.correlation else None) == routes
    assert (why in verdict.forbidden) if why else verdict.forbidden is None


texts = st.text(max_size=300) | st.builds(
    lambda d, tail: json.dumps(d) + tail,
    st.dictionaries(
        st.sampled_from(["target", "message_ids", "channel", "conversation_id", "recipient"]),
        st.text(max_size=8) | st.lists(st.text(max_size=8), max_size=3),
    ),
    st.text(max_size=50),
)
targets = st.frozensets(st.sampled_from(["sf", "md", "x", ""]), max_size=3)


@given(texts, targets, st.sampled_from([None, "sf", "md"]), st.sampled_from([None, KEY]))
def test_a_reference_routes_only_to_the_sources_own_targets_and_only_signed_under_a_key(
    text: str, own: frozenset[str], default: str | None, key: bytes | None
) -> None:
    try:
        verdict = judge(text, own, default, key)
    except TooManyIds:
        return
    if verdict.correlation is not None:
        assert verdict.correlation.target in own and verdict.forbidden is None
        if key is not None:
            read = read_reference(text, key)
            assert read is not None and read.signature == "valid"


@given(
    st.dictionaries(
        st.sampled_from(["target", "channel", "conversation_id"]), st.text(min_size=1, max_size=20)
    ),
    st.lists(st.text(min_size=1, max_size=20).filter(str.strip), min_size=1, max_size=5),
    st.binary(min_size=1, max_size=64),
)
def test_what_is_signed_reads_back_valid_under_its_key_and_only_under_it(
    fields: dict[str, str], ids: list[str], key: bytes
) -> None:
    reference = {"channel": "c", **fields, "message_ids": ids}
    try:
        signed = sign_reference(reference, key)
        read = read_reference(signed, key)
    except ValueError:  # a field the contract refuses (blank, too long) is refused when signing
        return
    assert read is not None and read.signature == "valid"
    other = read_reference(signed, key + b"!")
    assert other is not None and other.signature == "invalid"


@given(st.text(min_size=1, max_size=4), st.integers(min_value=0, max_value=200))
def test_any_change_to_a_signed_reference_unsigns_it(change: str, at: int) -> None:
    position = at % len(SIGNED)
    changed = SIGNED[:position] + change + SIGNED[position + 1 :]
    read = read_reference(changed, KEY)
    if changed != SIGNED and read is not None:
        assert read.signature != "valid"


def test_the_documented_signed_reference_verifies_under_its_documented_key() -> None:
    page = (Path(__file__).parents[3] / "docs" / "concepts" / "ingress.md").read_text()
    (line,) = [x for x in page.splitlines() if x.startswith('{"target":"sf-prod"') and "}." in x]
    read = read_reference(line, "example-key")
    assert read is not None and read.signature == "valid"
