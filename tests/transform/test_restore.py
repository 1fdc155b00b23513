"""Restoring surrogates in responses: whole, and streamed in arbitrary chunks (property tests)."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from phiwarden.transform.restore import Restorer
from phiwarden.transform.vault import Vault, VaultKeys

KEYS = VaultKeys.from_secret(b"k" * 32)
VALUES = [
    ("name", "Maria Garcia"), ("name", "John Smith"), ("ssn", "478-22-9134"), ("date", "1984-07-12"),
    ("email", "jsmith61@gmail.com"), ("mrn", "MRN-00482913"), ("phone", "(617) 555-0134"), ("name", "Maria"),
]  # fmt: skip


def _vault() -> Vault:
    vault = Vault.new(KEYS, "ana@example.org", "conv-1")
    for category, value in VALUES:
        vault.surrogate(category, value)
    return vault


ORIGINALS = _vault().originals()
SURROGATES = sorted(ORIGINALS)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    pieces, previous = [], 0
    for point in [*points, len(text)]:
        pieces.append(text[previous:point])
        previous = point
    return pieces


def _stream(restorer: Restorer, pieces: list[str]) -> str:
    stream = restorer.stream()
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


texts = st.lists(
    st.one_of(st.sampled_from(SURROGATES), st.text(max_size=8), st.sampled_from(["-", " ", "1", "M"])),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=20))
def test_any_chunking_restores_like_the_whole_text(text: str, cuts: list[int]) -> None:
    restorer = Restorer(ORIGINALS)
    assert _stream(restorer, _split(text, cuts)) == restorer.restore(text)


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=30))
def test_a_surrogate_split_across_chunks_is_restored_whole(cuts: list[int]) -> None:
    restorer = Restorer(ORIGINALS)
    fake = next(s for s, o in ORIGINALS.items() if o == "Maria Garcia")
    text = (
        f"Dear {fake}, your number {next(s for s, o in ORIGINALS.items() if o == '478-22-9134')} is on file."
    )
    assert _stream(restorer, _split(text, cuts)) == "Dear Maria Garcia, your number 478-22-9134 is on file."


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=30))
def test_json_tool_arguments_restore_escaped(cuts: list[int]) -> None:
    originals = {"Greer Hawthorne": 'Ann "Nan" O\'Hara', "138-73-1034": "478-22-9134"}
    restorer = Restorer(originals, json_strings=True)
    text = json.dumps({"to": "Greer Hawthorne", "ssn": "138-73-1034", "n": 1})
    out = _stream(restorer, _split(text, cuts))
    assert json.loads(out) == {"to": 'Ann "Nan" O\'Hara', "ssn": "478-22-9134", "n": 1}


def test_hold_back_is_bounded_by_the_longest_surrogate() -> None:
    restorer = Restorer(ORIGINALS)
    stream = restorer.stream()
    released = ""
    text = "x" * 50 + SURROGATES[0][:-1]
    for ch in text:
        released += stream.feed(ch)
        assert len(stream.pending) < restorer.longest
    assert released == "x" * 50
    assert stream.flush() == SURROGATES[0][:-1]


def test_no_surrogates_means_no_hold_back() -> None:
    stream = Restorer({}).stream()
    assert stream.feed("Maria") == "Maria"


def test_random_documents_round_trip() -> None:
    rng = random.Random(7)
    restorer = Restorer(ORIGINALS)
    inverse = {v: k for k, v in ORIGINALS.items()}
    for _ in range(200):
        words = [rng.choice([*ORIGINALS.values(), "and", "the", "patient", "\n", "—"]) for _ in range(30)]
        original = " ".join(words)
        pseudonymized = " ".join(inverse.get(w, w) for w in words)
        assert _stream(restorer, _split(pseudonymized, [rng.randint(0, 400) for _ in range(15)])) == original
