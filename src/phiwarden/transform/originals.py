"""The other forms of the real values a request holds, each with what takes its place.

Detection finds "Marisol Okonkwo" and "518-42-7731" where context names them; the same request often
writes them again otherwise: "Okonkwo's chart", "MARISOL OKONKWO", "518427731", "07/12/1984". Left
as they are, they would reach the vendor beside their surrogates. The forms are those `variants.py`
knows of a surrogate, read the other way: `table` given (original, surrogate) pairs yields each form
of the original with the surrogate written the same way, so what is replaced in the request is
exactly what the restorer puts back in the answer. They are found as the restorer finds surrogates
(literal anchors with `str.find`, one pass over the text, whole words only): no regex is built from
values.

A name's word alone is taken only when it is not an ordinary word ("Will", "Grace", "May", "Long" are
words as often as names); with a title ("Mr. Long") it is. Surrogate words are never ordinary words
(`surrogates.toml`), which is why the restorer needs no such rule.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator

from phiwarden.detect.vocabulary import load_data_file
from phiwarden.transform.restore import Restorer
from phiwarden.transform.surrogates import name_words, parse_date
from phiwarden.transform.variants import Form, forms, table

# Titles before a name's word that is also an ordinary word: with one it is the person.
_TITLES = ("Mr.", "Mrs.", "Ms.", "Mx.", "Dr.", "Prof.", "Mr", "Mrs", "Ms", "Mx", "Dr", "Prof", "Miss")


@functools.cache
def ordinary_words() -> frozenset[str]:
    """Words (folded) a name's word may also be: given names that are English words, the words of
    code, interfaces and documents, products and places, honorifics (the detector's lists)."""
    given = load_data_file("given_names.toml")
    words = load_data_file("words.toml")
    prose = load_data_file("prose.toml")
    lists = [
        given["ambiguous"], words["common"], words["never"], words["particles"], words["function_words"],
        prose["names"]["never"], prose["cues"]["honorifics"],
    ]  # fmt: skip
    return frozenset(word.casefold() for listed in lists for word in listed)


class OriginalForms:
    """Finds the forms of some real values in text, each with its replacement and its value."""

    def __init__(self, values: Iterable[tuple[str, str, str]]) -> None:
        """`values`: (original, replacement, category); the replacement is written in each form the
        original is (a surrogate; for masking the original itself, the placeholder chosen by value)."""
        listed = list(values)
        # The value each form writes, for masks (a form two values share is not in `table`'s output).
        self._values: dict[str, tuple[str, str]] = {}
        for original, replacement, category in listed:
            self._values[original] = (category, original)
            for form, _ in forms(original, replacement, category):
                self._values.setdefault(form, (category, original))
        ordinary = ordinary_words()
        kept: dict[str, Form] = {}
        for form, given in table(listed).items():
            lone = given.category == "name" and not given.exact and _one_word(form)
            if lone and form.casefold() in ordinary:
                for title in _TITLES:
                    titled = f"{title} {form}"
                    kept.setdefault(titled, Form(f"{title} {given.output}", "name", False))
                    if form in self._values:
                        self._values.setdefault(titled, self._values[form])
                continue
            kept.setdefault(form, given)
        self._finder = Restorer({}, forms=kept)

    def __bool__(self) -> bool:
        return bool(self._finder)

    def __contains__(self, form: str) -> bool:
        return form in self._finder.forms

    def occurrences(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, form) of each form standing as a word in `text`, leftmost first."""
        return self._finder.occurrences(text)

    def replacement(self, form: str) -> str:
        """The replacement written as `form` writes its original."""
        return self._finder.replacements[form]

    def category(self, form: str) -> str:
        return self._finder.forms[form].category

    def value(self, form: str) -> tuple[str, str]:
        """(category, original) of the value `form` writes."""
        return self._values.get(form) or (self.category(form), form)


@functools.lru_cache(maxsize=32)
def of_surrogates(entries: frozenset[tuple[str, str, str]]) -> OriginalForms:
    """The forms of a vault's originals, each replaced by its surrogate written the same way (a turn
    finds the previous turn's: kept for a few conversations). `entries`: (surrogate, original,
    category)."""
    return OriginalForms((original, fake, category) for fake, original, category in entries)


def distinct(
    values: Iterable[tuple[str, str]], earlier: OriginalForms | None = None
) -> list[tuple[str, str]]:
    """(category, value) of `values` less those that only write an earlier one (or one of `earlier`)
    in another form: detection finding "Marisol Okonkwo" then "Marisol", or "1984-07-12" then
    "07/12/1984", found one person and one date, which get one surrogate (or mask) each."""
    listed = list(values)
    # Forms are written out only where a category repeats (most requests hold one value of each).
    counts = Counter(category for category, _ in listed)
    seen: set[str] = set()
    meanings: set[tuple[str, object]] = set()
    out: list[tuple[str, str]] = []
    for category, value in listed:
        if value in seen or (earlier is not None and value in earlier):
            continue
        meaning = _meaning(category, value) if counts[category] > 1 else None
        if meaning is not None and meaning in meanings:
            continue
        out.append((category, value))
        if counts[category] > 1:
            seen.add(value)
            seen.update(form for form, _ in forms(value, value, category))
            if meaning is not None:
                meanings.add(meaning)
    return out


def _meaning(category: str, value: str) -> tuple[str, object] | None:
    """What a date or a number stands for, however it is written ("7/12/84" is 1984-07-12, an SSN
    with en dashes the one with hyphens): two such values are one, with one surrogate."""
    if category == "date":
        day = parse_date(value)
        return None if day is None else (category, day)
    if category in ("ssn", "phone", "fax"):
        digits = "".join(ch for ch in value if ch.isdigit())
        return (category, digits) if len(digits) >= 7 else None
    return None


def _one_word(form: str) -> bool:
    return len(name_words(form)) == 1
