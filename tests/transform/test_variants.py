"""Other forms of surrogates: restored whole and streamed in any chunks, never inside other words;
names keep their words' surrogates; ages and dates of people over 89 stay over 89."""

from __future__ import annotations

import datetime as dt
import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phiwarden.transform.restore import Restorer
from phiwarden.transform.surrogates import surrogate
from phiwarden.transform.variants import table
from phiwarden.transform.vault import Vault, VaultKeys

KEYS = VaultKeys.from_secret(b"v" * 32)


def _vault() -> Vault:
    vault = Vault.new(KEYS, "ana@example.org", "conv-forms")
    for category, value in [
        ("name", "Marisol Okonkwo"), ("ssn", "518-42-7731"), ("date", "03/14/2025"),
        ("phone", "(617) 555-0134"), ("name", "Tobias Renner"), ("date", "95"), ("mrn", "MRN-40981723"),
    ]:  # fmt: skip
        vault.surrogate(category, value)
    return vault


VAULT = _vault()
FAKE = {entry.original: fake for fake, entry in VAULT.entries.items()}
FIRST, LAST = FAKE["Marisol Okonkwo"].split()
SSN = FAKE["518-42-7731"]
DATE = FAKE["03/14/2025"]
AGE = FAKE["95"]


def _stream(restorer: Restorer, pieces: list[str]) -> str:
    stream = restorer.stream()
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def _iso(us_date: str) -> str:
    month, day, year = us_date.split("/")
    return f"{year}-{month}-{day}"


def test_a_names_words_other_cases_and_layouts_are_restored() -> None:
    restorer = Restorer(VAULT.entries)
    digits = SSN.replace("-", "")
    text = (
        f"Dear Ms. {LAST}, | RE: {FIRST.upper()} {LAST.upper()} | Hi {FIRST}! | {LAST}, {FIRST} | "
        f"{FIRST}\n{LAST} | **{FIRST} {LAST}**'s chart | SSN {digits} | SSN {digits[:3]} {digits[3:5]} "
        f"{digits[5:]} | seen {_iso(DATE)} | aged {AGE}"
    )
    assert restorer.restore(text) == (
        "Dear Ms. Okonkwo, | RE: MARISOL OKONKWO | Hi Marisol! | Okonkwo, Marisol | Marisol\nOkonkwo | "
        "**Marisol Okonkwo**'s chart | SSN 518427731 | SSN 518 42 7731 | seen 2025-03-14 | aged 95"
    )


def test_dates_are_restored_in_the_format_written() -> None:
    restorer = Restorer(VAULT.entries)
    moment = dt.datetime.strptime(DATE, "%m/%d/%Y")
    month = moment.strftime("%B")
    assert restorer.restore(f"on {month} {moment.day}, {moment.year}.") == "on March 14, 2025."
    assert restorer.restore(f"on {moment.day} {month[:3]} {moment.year}") == "on 14 Mar 2025"
    assert restorer.restore(f"({moment:%Y%m%d})") == "(20250314)"


def test_forms_are_whole_words_only() -> None:
    restorer = Restorer(VAULT.entries)
    for text in (f"19{AGE}", f"{AGE}0 mg", f"x{LAST}", f"{LAST}s", f"{FIRST.lower()} case", f"1{SSN}"):
        assert restorer.restore(text) == text


def test_an_age_is_restored_beside_an_age_word_only() -> None:
    restorer = Restorer(VAULT.entries)
    assert restorer.restore(f"line {AGE}, port {AGE}") == f"line {AGE}, port {AGE}"
    assert restorer.restore(f"a {AGE}-year-old, aged {AGE}, Age: {AGE}") == "a 95-year-old, aged 95, Age: 95"
    assert VAULT.is_surrogate(AGE)  # in signed thinking, the number alone is the surrogate
    crowded = Vault.new(KEYS, "ana@example.org", "conv-ages")
    numbers = " ".join(str(n) for n in range(80, 120))
    assert crowded.surrogate("date", "95", avoid=f"lines {numbers}").isdigit()
    assert restorer.restore(f"{LAST}2024.txt") == "Okonkwo2024.txt"  # a letter may touch a digit
    assert restorer.restore(f"notes_{LAST}_{FIRST}.md") == "notes_Okonkwo_Marisol.md"


def test_json_text_restores_after_escapes_and_writes_originals_escaped() -> None:
    vault = Vault.new(KEYS, "ana@example.org", "conv-json")
    fake = vault.surrogate("name", 'Ann "Nan" Hara')
    restorer = Restorer(vault.entries, json_strings=True)
    text = json.dumps({"note": f"line one\n{fake.split()[-1]} and {fake}"})
    assert json.loads(restorer.restore(text)) == {"note": 'line one\nHara and Ann "Nan" Hara'}


def test_a_form_two_surrogates_share_is_left_alone_and_a_surrogate_beats_a_form() -> None:
    forms = table(
        [("Vaughn Galloway", "Marisol Okonkwo", "name"), ("Vaughn Lockhart", "Tobias Renner", "name")]
    )
    assert "Vaughn" not in forms and forms["Galloway"].output == "Okonkwo"
    forms = table([("Vaughn Galloway", "Marisol Okonkwo", "name"), ("Galloway", "Renner", "name")])
    assert forms["Galloway"].output == "Renner" and forms["Galloway"].exact


@pytest.mark.parametrize("cut", range(1, 12))
def test_a_whole_form_at_a_chunks_end_waits_for_the_next_character(cut: int) -> None:
    restorer = Restorer(VAULT.entries)
    for text in (f"Hi {LAST}s!", f"Hi {LAST}!", f"age 1{AGE}0", f"age {AGE}."):
        head = text[: cut + 3]
        assert _stream(restorer, [head, text[len(head) :]]) == restorer.restore(text)


FORMS = sorted(Restorer(VAULT.entries).replacements)
texts = st.lists(
    st.one_of(st.sampled_from(FORMS), st.text(max_size=6), st.sampled_from(["-", " ", "1", "s", "\n", "M"])),
    max_size=14,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=25))
def test_any_chunking_of_forms_restores_like_the_whole_text(text: str, cuts: list[int]) -> None:
    restorer = Restorer(VAULT.entries)
    assert _stream(restorer, _split(text, cuts)) == restorer.restore(text)


@settings(max_examples=300, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=25))
def test_any_chunking_of_json_arguments_restores_like_the_whole_text(text: str, cuts: list[int]) -> None:
    restorer = Restorer(VAULT.entries, json_strings=True)
    arguments = json.dumps({"to": text, "n": 1})
    whole = restorer.restore(arguments)
    assert _stream(restorer, _split(arguments, cuts)) == whole
    json.loads(whole)


def test_hold_back_never_exceeds_the_longest_form() -> None:
    restorer = Restorer(VAULT.entries)
    stream = restorer.stream()
    released = ""
    for ch in "x " * 30 + f"Dear {LAST}":
        released += stream.feed(ch)
        assert len(stream.pending) <= restorer.longest
    assert released == "x " * 30 + "Dear "
    assert stream.flush() == "Okonkwo"


# --- surrogates ----------------------------------------------------------------------------------


def test_a_names_words_keep_their_surrogates() -> None:
    vault = Vault.new(KEYS, "ana@example.org", "conv-words")
    full = vault.surrogate("name", "Marisol Okonkwo")
    first, last = full.split()
    assert vault.surrogate("name", "Okonkwo") == last
    assert vault.surrogate("name", "OKONKWO^MARISOL") == f"{last.upper()}^{first.upper()}"
    assert vault.surrogate("name", "Okonkwo, Marisol") == f"{last}, {first}"
    sibling = vault.surrogate("name", "Adaeze Okonkwo")
    assert sibling.endswith(f" {last}") and not sibling.startswith(first)
    other = vault.surrogate("name", "Tobias Renner")
    assert not {w.casefold() for w in other.split()} & {first.casefold(), last.casefold()}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Ann", "Li", "Bo", "Chen", "Park", "Garcia", "Maria", "John"]),
        min_size=2,
        max_size=24,
    )
)
def test_distinct_names_get_distinct_surrogates_and_words_stay_apart(words: list[str]) -> None:
    vault = Vault.new(KEYS, "ana@example.org", "conv-many")
    names = [" ".join(words[i : i + 2]) for i in range(0, len(words) - 1, 2)]
    given_out = {name: vault.surrogate("name", name) for name in names}
    assert len(set(given_out.values())) == len(set(given_out))
    # One surrogate word never stands for two original words (the answer's "Ms. X" is one person).
    meaning: dict[str, str] = {}
    for name, fake in given_out.items():
        for original, word in zip(name.split(), fake.split(), strict=True):
            assert meaning.setdefault(word, original) == original


def test_surrogates_in_signed_text_are_recognized_in_any_form() -> None:
    assert all(
        VAULT.is_surrogate(v)
        for v in (f"Ms. {LAST}", LAST.upper(), FIRST, f"{FIRST} {LAST}".lower(), f"{FIRST} A. {LAST}",
                  f"{LAST}'s", SSN.replace("-", ""), _iso(DATE), f"Dr {LAST}")
    )  # fmt: skip
    assert not any(
        VAULT.is_surrogate(v)
        for v in ("Marisol Okonkwo", "Okonkwo", f"Marisol {LAST}", "518-42-7731", "Ms. Renner")
    )


def test_a_new_surrogate_avoids_standing_as_a_word_in_the_text() -> None:
    taken = Vault.new(KEYS, "ana@example.org", "conv-avoid").surrogate("ssn", "478-22-9134")
    vault = Vault.new(KEYS, "ana@example.org", "conv-avoid")
    assert vault.surrogate("ssn", "478-22-9134", avoid=f"id {taken.replace('-', '')}.") != taken
    inside = Vault.new(KEYS, "ana@example.org", "conv-avoid")
    assert inside.surrogate("ssn", "478-22-9134", avoid=f"x1{taken}9") == taken


@pytest.mark.parametrize("age", ["90", "95", "104"])
def test_ages_over_89_get_ages_over_89(age: str) -> None:
    outs = {surrogate("date", age, random.Random(seed)) for seed in range(40)}
    assert all(o.isdigit() and 89 < int(o) <= 110 and o != age for o in outs) and len(outs) > 5
    assert all(len(surrogate("date", "45", random.Random(s))) == 2 for s in range(10))


@pytest.mark.parametrize("value", ["03/14/1931", "1931-03-14", "19310314", "March 14, 1931"])
def test_a_date_over_89_years_back_moves_its_year_and_stays_that_old(value: str) -> None:
    newest = dt.date.today().year - 90
    for seed in range(60):
        out = surrogate("date", value, random.Random(seed))
        year = int(re.findall(r"\d{4}", out)[0])
        assert abs(year - 1931) >= 2 and year <= newest, out


def test_a_form_two_formats_of_one_date_share_restores_in_the_first() -> None:
    forms = table([("05/02/2024", "03/14/2025", "date")])
    assert forms["May 2, 2024"].output == "March 14, 2025"


def _reference(restorer: Restorer, text: str) -> str:
    """What one regex with word edges as lookarounds makes of `text` (slow, but plainly right)."""

    def edged(form: str) -> str:
        before = r"(?<!\d)" if form[0].isdigit() else r"(?<![^\W\d_])" if form[0].isalpha() else ""
        after = r"(?!\d)" if form[-1].isdigit() else r"(?![^\W\d_])" if form[-1].isalpha() else ""
        return before + re.escape(form) + after

    ordered = sorted(restorer.replacements, key=lambda s: (-len(s), s))
    pattern = re.compile("|".join(edged(f) for f in ordered))
    return pattern.sub(lambda m: restorer.replacements[m.group()], text)


# Letters and digits as both sides read them (marks and other numerals such as "²" differ).
plain_texts = st.lists(
    st.one_of(
        st.sampled_from(FORMS),
        st.text(st.characters(exclude_categories=["Mn", "Mc", "Me", "No", "Nl", "Cs"]), max_size=6),
        st.sampled_from(["-", " ", "1", "s", "\n", "M"]),
    ),
    max_size=14,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(text=plain_texts)
def test_restoring_takes_what_one_regex_with_word_edges_would(text: str) -> None:
    restorer = Restorer(VAULT.entries)
    assert restorer.restore(text) == _reference(restorer, text)


def _many() -> Vault:
    """A conversation with more anchors than are looked for one by one (an alternation instead)."""
    vault = Vault.new(KEYS, "ana@example.org", "conv-many-values")
    for number in range(24):
        vault.surrogate("name", f"Patient{chr(65 + number)} Family{chr(75 + number % 10)}")
        vault.surrogate("date", f"03/{number + 1:02d}/2020")
    return vault


MANY = Restorer(_many().entries)
many_texts = st.lists(
    st.one_of(st.sampled_from(sorted(MANY.replacements)), st.sampled_from(["-", " ", "1", "s", "\n", "é"])),
    max_size=14,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=many_texts, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=25))
def test_many_anchors_restore_like_one_regex_and_stream_alike(text: str, cuts: list[int]) -> None:
    assert MANY._pattern is not None
    whole = MANY.restore(text)
    assert whole == _reference(MANY, text)
    assert _stream(MANY, _split(text, cuts)) == whole
