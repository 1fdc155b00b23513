"""The forms a surrogate takes in an answer besides its own, each with the original to put back.

A model given "Vaughn Galloway" writes "Dear Ms. Galloway", "VAUGHN GALLOWAY" or "Hi Vaughn!"; given
"628-31-5361" it writes "628315361", given "07/15/2024" "2024-07-15", given "MRN-73910264" "73910264".
`table` maps every surrogate of a conversation, and each of these forms, to the original written the
same way ("MARISOL OKONKWO", "Okonkwo", "518427731", "2025-03-14", "00482913"). A form two surrogates
share with different originals is left out (restoring it would be a guess), and a surrogate itself
always wins over another one's form.
Digit layouts and date formats are data (`data/variants.toml`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from phiwarden.transform.surrogates import name_words, parse_date

# What the forms of an age are restored as: never taken as values a client wrote (an age in a
# sentence is found by detection), and never the bare number.
AGE = "age"
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Form:
    output: str
    category: str
    exact: bool  # the surrogate as it was given, not another form of it


@dataclass(frozen=True, slots=True)
class _Rules:
    honorifics: frozenset[str]
    layouts: dict[str, tuple[str, ...]]
    date_formats: tuple[str, ...]
    age_forms: tuple[str, ...]


@functools.cache
def _rules() -> _Rules:
    text = resources.files("phiwarden.transform").joinpath("data", "variants.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return _Rules(
        honorifics=frozenset(data["honorifics"]),
        layouts={k: tuple(v) for k, v in data["layouts"].items()},
        date_formats=tuple(data["dates"]["formats"]),
        age_forms=tuple(data["ages"]["forms"]),
    )


def table(entries: Iterable[tuple[str, str, str]]) -> dict[str, Form]:
    """(surrogate, original, category) -> every restorable form with what it restores to."""
    listed = list(entries)
    # An age alone is any number ("line 94"): only its forms with an age word are restored.
    out = {
        fake: Form(original, category, True)
        for fake, original, category in listed
        if not is_age(fake, original, category)
    }
    clashes: set[str] = set()
    for fake, original, category in listed:
        kind = AGE if is_age(fake, original, category) else category
        # Within one surrogate the first form wins ("May 2, 2024" is both "{Month} {d}" and "{Mon} {d}").
        own: dict[str, str] = {}
        for form, output in forms(fake, original, category):
            own.setdefault(form, output)
        for form, output in own.items():
            if form in clashes:
                continue
            known = out.get(form)
            if known is None:
                out[form] = Form(output, kind, False)
            elif not known.exact and known.output != output:
                del out[form]
                clashes.add(form)
    return out


@functools.lru_cache(maxsize=4096)
def forms(fake: str, original: str, category: str) -> tuple[tuple[str, str], ...]:
    """(form, original written that way) for the other forms of one surrogate (asked when it is
    made, then for every answer: kept)."""
    out: list[tuple[str, str]] = []
    if category == "name":
        out.extend(_name_forms(fake, original))
    elif is_age(fake, original, category):
        out.extend((f.format(n=fake), f.format(n=original)) for f in _rules().age_forms)
    elif category == "date":
        out.extend(_date_forms(fake, original))
    layouts = _rules().layouts.get(category)
    if layouts:
        out.extend(_digit_forms(fake, original, layouts))
    out.extend(_unlabelled(fake, original))
    return tuple(out)


def is_age(fake: str, original: str, category: str) -> bool:
    """An age over 89 (detection reports those as dates), not a date."""
    return category == "date" and fake.isdigit() and original.isdigit() and len(fake) <= 3


def name_pairs(fake: str, original: str) -> list[tuple[str, str]]:
    """The words of a name surrogate beside the original's words they stand for (their letters,
    without a trailing period); initials are left out, being too short to tell apart."""
    fake_words, original_words = name_words(fake)[::2], name_words(original)[::2]
    if len(fake_words) != len(original_words):
        return []
    return [
        (f.rstrip("."), o.rstrip("."))
        for f, o in zip(fake_words, original_words, strict=True)
        if len(f.rstrip(".")) >= 3 and o.rstrip(".")
    ]


def normalized(value: str) -> str:
    """`value` as forms are compared where nothing is rewritten (signed thinking): one space between
    words, case folded, without a leading title ("Ms.") or a trailing possessive."""
    text = " ".join(value.split()).casefold()
    head, _, rest = text.partition(" ")
    if rest and head.rstrip(".") in _rules().honorifics:
        text = rest
    for suffix in ("'s", "\u2019s"):
        text = text.removesuffix(suffix)
    return text


def _name_forms(fake: str, original: str) -> Iterator[tuple[str, str]]:
    yield fake.upper(), original.upper()
    yield _titled(fake), _titled(original)
    if len(name_words(fake)) > 1:
        yield fake.lower(), original.lower()
        for fake_word, original_word in name_pairs(fake, original):
            yield _titled(fake_word), _titled(original_word)
            yield fake_word.upper(), original_word.upper()


def _titled(name: str) -> str:
    """Each word capitalized where it is all one case ("OKONKWO" -> "Okonkwo"); "McAdam" kept."""
    return "".join(
        word.title() if index % 2 == 0 and (word.isupper() or word.islower()) else word
        for index, word in enumerate(name_words(name))
    )


def _digit_forms(fake: str, original: str, layouts: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    if any(ch.isalpha() for ch in fake):
        return
    fake_digits = "".join(ch for ch in fake if ch.isdigit())
    original_digits = "".join(ch for ch in original if ch.isdigit())
    if len(fake_digits) != len(original_digits):
        return
    for layout in layouts:
        if layout.count("#") == len(fake_digits):
            yield _fill(layout, fake_digits), _fill(layout, original_digits)


# A record number with its label ("MRN-00482913"): surrogates keep the label, new digits after it.
_LABELLED = re.compile(r"([A-Z]{2,}[-_#: ]?)(\d{6,})")


def _unlabelled(fake: str, original: str) -> Iterator[tuple[str, str]]:
    """The digits of a labelled number alone ("00482913"): six or more, as a shorter number is any
    number."""
    mine, theirs = _LABELLED.fullmatch(fake), _LABELLED.fullmatch(original)
    if mine and theirs and mine[1] == theirs[1] and len(mine[2]) == len(theirs[2]):
        yield mine[2], theirs[2]


def _fill(layout: str, digits: str) -> str:
    it = iter(digits)
    return "".join(next(it) if ch == "#" else ch for ch in layout)


def _date_forms(fake: str, original: str) -> Iterator[tuple[str, str]]:
    fake_date, original_date = parse_date(fake), parse_date(original)
    if fake_date is None or original_date is None:
        return
    for fmt in _rules().date_formats:
        yield _render(fmt, fake_date), _render(fmt, original_date)


def _render(fmt: str, day: dt.date) -> str:
    return fmt.format(
        Y=f"{day.year:04d}", yy=f"{day.year % 100:02d}", mm=f"{day.month:02d}", dd=f"{day.day:02d}",
        m=day.month, d=day.day, Month=_MONTHS[day.month - 1], Mon=_MONTHS[day.month - 1][:3],
    )  # fmt: skip


def stands_alone(text: str, start: int, end: int, *, json_text: bool = False) -> bool:
    """Whether `text[start:end]` is a word there: where it begins or ends with a letter no letter
    touches it, where with a digit no digit (the restorer's rule; "97" in "1997" is not an age). In
    JSON text a word may follow an escape ("\\nVaughn")."""
    if start > 0 and _touches(text[start], text[start - 1]):
        escaped = json_text and start > 1 and text[start - 2] == "\\" and text[start - 1] in "bfnrt"
        if not escaped:
            return False
    return not (end < len(text) and _touches(text[end - 1], text[end]))


def _touches(edge: str, neighbour: str) -> bool:
    if edge.isdecimal():
        return neighbour.isdecimal()
    return edge.isalpha() and neighbour.isalpha()
