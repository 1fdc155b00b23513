"""Other forms of real values: found as whole words, replaced by the surrogate written the same way,
and restored by the restorer to exactly what was written; ordinary words alone are left alone."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from phiwarden.transform.originals import OriginalForms, distinct, of_surrogates
from phiwarden.transform.restore import Restorer
from phiwarden.transform.vault import Vault, VaultKeys

KEYS = VaultKeys.from_secret(b"o" * 32)
VALUES = [
    ("name", "Marisol Okonkwo"), ("ssn", "518-42-7731"), ("date", "1984-07-12"), ("mrn", "MRN-00482913"),
    ("phone", "(617) 555-0134"), ("name", "Grace Halloran"),
]  # fmt: skip


def _vault() -> Vault:
    vault = Vault.new(KEYS, "ana@example.org", "conv-originals")
    for category, value in VALUES:
        vault.surrogate(category, value)
    return vault


VAULT = _vault()
FAKE = {entry.original: fake for fake, entry in VAULT.entries.items()}
GIVEN = of_surrogates(frozenset((fake, e.original, e.category) for fake, e in VAULT.entries.items()))
RESTORER = Restorer(VAULT.entries)
# Forms a request writes besides the values detection found.
FORMS = [
    "Okonkwo", "OKONKWO", "Marisol", "MARISOL OKONKWO", "marisol okonkwo", "Okonkwo, Marisol",
    "518427731", "518 42 7731", "518.42.7731", "07/12/1984", "July 12, 1984", "12 Jul 1984", "19840712",
    "00482913", "617-555-0134", "6175550134", "Halloran", "HALLORAN",
]  # fmt: skip


def _replace(text: str, given: OriginalForms = GIVEN) -> str:
    out, position = [], 0
    for start, end, form in given.occurrences(text):
        out += [text[position:start], given.replacement(form)]
        position = end
    return "".join([*out, text[position:]])


def _stands(form: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", text) is not None


def test_every_form_is_replaced_by_the_surrogate_written_alike_and_restored() -> None:
    first, last = FAKE["Marisol Okonkwo"].split()
    text = (
        "Also tell Okonkwo the clinic moved. Put it in Okonkwo's chart, Ms. Okonkwo. REMINDER FOR "
        "MARISOL OKONKWO; file: marisol okonkwo.txt. SSN 518427731 or 518 42 7731, DOB 07/12/1984 "
        "(July 12, 1984), record 00482913, call 617-555-0134."
    )
    sent = _replace(text)
    for form in FORMS:
        assert not _stands(form, sent), form
    assert f"tell {last} the" in sent and f"{last}'s chart, Ms. {last}." in sent
    assert f"FOR {first.upper()} {last.upper()};" in sent and f"{first} {last}".lower() + ".txt" in sent
    assert RESTORER.restore(sent) == text


def test_forms_are_taken_as_whole_words_only() -> None:
    for text in ("Okonkwos", "xOkonkwo", "1518427731", "5184277310", "OKONKWOS", "100482913"):
        assert _replace(text) == text
    # A letter may touch a digit, as the restorer takes it ("Okonkwo2024.txt").
    assert _replace("Okonkwo2024.txt") == FAKE["Marisol Okonkwo"].split()[1] + "2024.txt"


def test_a_given_name_that_is_an_ordinary_word_is_taken_only_with_a_title() -> None:
    """ "Grace" alone is a word; "Halloran" alone, and "Ms. Grace", are the patient."""
    first, last = FAKE["Grace Halloran"].split()
    text = "By God's grace. Grace period ends. GRACE HALLORAN came. Halloran, and Ms. Grace agreed."
    assert _replace(text) == (
        f"By God's grace. Grace period ends. {first.upper()} {last.upper()} came. {last}, and Ms. {first} agreed."
    )
    assert RESTORER.restore(_replace(text)) == text


def test_a_value_written_in_another_form_of_an_earlier_one_is_one_value() -> None:
    found = [("name", "Marisol Okonkwo"), ("name", "Marisol"), ("date", "1984-07-12"), ("date", "07/12/1984"),
             ("name", "OKONKWO"), ("name", "Tobias Renner"), ("ssn", "518427731")]  # fmt: skip
    assert distinct(found) == [("name", "Marisol Okonkwo"), ("date", "1984-07-12"), ("name", "Tobias Renner"),
                               ("ssn", "518427731")]  # fmt: skip
    assert distinct([("ssn", "518-42-7731"), ("name", "Renner")], GIVEN) == [("name", "Renner")]


def test_masks_know_the_value_each_form_writes() -> None:
    given = OriginalForms(
        [("Marisol Okonkwo", "Marisol Okonkwo", "name"), ("1984-07-12", "1984-07-12", "date")]
    )
    assert given.value("OKONKWO") == given.value("Marisol") == ("name", "Marisol Okonkwo")
    assert given.value("July 12, 1984") == ("date", "1984-07-12")


_FILLER = st.text(alphabet=" .,;:'()\n-abcxyzQRS", max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_FILLER, st.sampled_from([*FORMS, *(v for _, v in VALUES)])), max_size=12), _FILLER)
def test_any_text_of_forms_leaves_none_and_restores_to_itself(
    pieces: list[tuple[str, str]], tail: str
) -> None:
    text = "".join(filler + " " + form + " " for filler, form in pieces) + tail
    sent = _replace(text)
    for _, form in pieces:
        assert not _stands(form, sent), form
    assert RESTORER.restore(sent) == text


def test_values_that_mean_the_same_date_or_number_are_one() -> None:
    found = [
        ("date", "1984-07-12"),
        ("date", "7/12/84"),
        ("date", "July 12, 1984"),
        ("date", "1990-01-02"),
        ("ssn", "518-42-7731"),
        ("ssn", "518\u201342\u20137731"),
        ("phone", "(617) 555-0143"),
        ("phone", "617.555.0143"),
    ]
    assert distinct(found) == [
        ("date", "1984-07-12"),
        ("date", "1990-01-02"),
        ("ssn", "518-42-7731"),
        ("phone", "(617) 555-0143"),
    ]
