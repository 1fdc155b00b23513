"""Format-preserving surrogates: an SSN becomes another valid-looking SSN, a name another name.

A surrogate keeps what a model needs to reason about the value (its kind, its layout, separators,
letter case, length) and nothing of the value itself. The random source is seeded by the caller, so
the same value in the same conversation always gets the same surrogate (see `vault.Vault`).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

_DIGITS = re.compile(r"\d")
# What surrogates draw from, built once (each list costs more than the draw).
_SSN_AREAS = [n for n in range(1, 900) if n != 666]
_DAY_SHIFTS = [d for d in range(-400, 401) if d]
_IP_FIRST = [n for n in range(11, 224) if n not in (127, 100, 169, 172, 192)]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    street_names: tuple[str, ...]
    cities: tuple[str, ...]
    email_domains: tuple[str, ...]
    opaque: str
    identifier_words: dict[str, str]


@functools.cache
def vocabulary() -> Vocabulary:
    text = resources.files("phiwarden.transform").joinpath("data", "surrogates.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return Vocabulary(
        first_names=tuple(data["first_names"]),
        last_names=tuple(data["last_names"]),
        street_names=tuple(data["street_names"]),
        cities=tuple(data["cities"]),
        email_domains=tuple(data["email_domains"]),
        opaque=data["opaque"],
        identifier_words=dict(data["identifier_words"]),
    )


def surrogate(category: str, value: str, rng: random.Random) -> str:
    """A stand-in for `value` of `category`, drawn from `rng`."""
    maker = _MAKERS.get(category, _same_shape)
    out = maker(value, rng)
    # A surrogate that happens to equal the value would leak it: fall back to a fresh shape.
    return out if out != value else _same_shape(value, rng, force_letters=True)


def _same_shape(value: str, rng: random.Random, *, force_letters: bool = False) -> str:
    """Digits for digits and letters for letters (same case); punctuation and a leading label kept.

    `MRN-00482913` -> `MRN-73910264`: the label tells the model what the value is, the digits are new.
    """
    label = re.match(r"[A-Z]{2,}(?=[-_#: ]?\d)", value)
    keep = 0 if force_letters or label is None else label.end()
    out = [value[:keep]]
    for index, ch in enumerate(value[keep:], start=keep):
        if ch.isdigit():
            first = index == 0 or not value[index - 1].isdigit()
            out.append(str(rng.randint(1 if first and ch != "0" else 0, 9)))
        elif "a" <= ch <= "z":
            out.append(rng.choice(string.ascii_lowercase))
        elif "A" <= ch <= "Z":
            out.append(rng.choice(string.ascii_uppercase))
        elif ch.isalpha():
            out.append(rng.choice(string.ascii_letters))
        else:
            out.append(ch)
    return "".join(out)


def _ssn(value: str, rng: random.Random) -> str:
    area = rng.choice(_SSN_AREAS)
    digits = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    return _fill_digits(value, digits) if len(_DIGITS.findall(value)) == 9 else _same_shape(value, rng)


def _phone(value: str, rng: random.Random) -> str:
    count = len(_DIGITS.findall(value))
    national = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}{rng.randint(2, 9)}" + "".join(
        str(rng.randint(0, 9)) for _ in range(6)
    )
    if count == 10:
        return _fill_digits(value, national)
    if count == 11 and _DIGITS.findall(value)[0] == "1":
        return _fill_digits(value, "1" + national)
    return _same_shape(value, rng)


def _zip(value: str, rng: random.Random) -> str:
    return _fill_digits(value, "".join(str(rng.randint(0, 9)) for _ in range(len(_DIGITS.findall(value)))))


def _fill_digits(template: str, digits: str) -> str:
    it = iter(digits)
    return "".join(next(it) if ch.isdigit() else ch for ch in template)


# Separators of HL7 (SMITH^JOHN^A), "Last, First" and plain "First Last": a name's surrogate keeps
# them, so its words line up one to one with the original's.
_NAME_SEPARATORS = re.compile(r"([\s,^]+)")


def name_words(value: str) -> list[str]:
    """A name split into words and the separators between them (odd indexes): `Okonkwo, Marisol` ->
    ["Okonkwo", ", ", "Marisol"]."""
    return _NAME_SEPARATORS.split(value)


def _name(value: str, rng: random.Random) -> str:
    words = vocabulary()
    parts = name_words(value)
    tokens = [p for p in parts[::2] if p]
    comma_or_hl7 = "," in value or "^" in value
    out: list[str] = []
    word_index = 0
    for index, part in enumerate(parts):
        if index % 2 == 1 or not part:
            out.append(part)
            continue
        letters = part.rstrip(".")
        if len(letters) <= 1:
            initial = rng.choice(string.ascii_uppercase)
            out.append(
                (initial if letters.isupper() or not letters else initial.lower()) + part[len(letters) :]
            )
            word_index += 1
            continue
        is_last = (word_index == 0) if comma_or_hl7 else (word_index == len(tokens) - 1 and len(tokens) > 1)
        pool = words.last_names if is_last else words.first_names
        out.append(_case_like(part, rng.choice(pool)))
        word_index += 1
    return "".join(out)


def _case_like(model: str, word: str) -> str:
    if model.isupper():
        return word.upper()
    if model.islower():
        return word.lower()
    return word


def _email(value: str, rng: random.Random) -> str:
    words = vocabulary()
    local = f"{rng.choice(words.first_names)}.{rng.choice(words.last_names)}{rng.randint(1, 99)}"
    return _case_like(value.partition("@")[0], local.lower()) + "@" + rng.choice(words.email_domains)


def _date(value: str, rng: random.Random) -> str:
    """Another date in the same format; values that do not parse keep their layout with new digits.

    Safe Harbor treats ages over 89, and every element of a date that shows one, as identifiers: an
    age (what detection reports as a date of two or three digits) becomes another age over 89, and a
    date over 89 years back another such date whose year is at least two away.
    """
    if value.isdigit() and len(value) <= 3:
        return _age(value, rng)
    for fmt in _DATE_FORMATS:
        try:
            moment = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        shifted = moment + dt.timedelta(days=rng.choice(_DAY_SHIFTS))
        if moment.year < dt.date.today().year - OLDEST_AGE:
            shifted = _old(moment, rng)
        if fmt in _UNPADDED and moment.strftime(fmt) != value:
            # strftime pads day and month with zeros; keep them unpadded as the original had them.
            return _UNPADDED[fmt](shifted)
        return shifted.strftime(fmt)
    return _same_shape(value, rng)


def _age(value: str, rng: random.Random) -> str:
    age = int(value)
    if age <= OLDEST_AGE:
        return _same_shape(value, rng)
    return str(rng.choice([n for n in range(OLDEST_AGE + 1, OLDEST_AGE + 22) if n != age]))


def _old(moment: dt.datetime, rng: random.Random) -> dt.datetime:
    """A moment over 89 years back whose year differs from `moment`'s by two or more."""
    newest = dt.date.today().year - OLDEST_AGE - 1
    years = [y for y in range(newest - 20, newest + 1) if abs(y - moment.year) >= 2]
    day = dt.date(rng.choice(years), 1, 1) + dt.timedelta(days=rng.randint(0, 364))
    return moment.replace(year=day.year, month=day.month, day=day.day)


def parse_date(value: str) -> dt.date | None:
    """The calendar date `value` writes in one of the date formats surrogates keep, else None."""
    for fmt in _DATE_FORMATS:
        if "%H" in fmt:
            continue
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


OLDEST_AGE = 89
_DATE_FORMATS = (
    "%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y", "%Y%m%d", "%Y/%m/%d", "%m/%d/%y", "%B %d, %Y",
    "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M", "%Y%m%d%H%M%S",
)  # fmt: skip
_UNPADDED: dict[str, Callable[[dt.datetime], str]] = {
    "%m/%d/%Y": lambda d: f"{d.month}/{d.day}/{d.year}",
    "%m/%d/%y": lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
}


def _address(value: str, rng: random.Random) -> str:
    words = vocabulary()
    match = re.match(r"(\d+)(\s+)(.*?)(\s+)(\S+\.?)$", value)
    if match:
        number, space, _, space2, suffix = match.groups()
        street = rng.choice(words.street_names)
        return f"{_zip(number, rng)}{space}{_case_like(value, street)}{space2}{suffix}"
    if not any(ch.isdigit() for ch in value) and len(value) < 40:
        return _case_like(value, rng.choice(words.cities))
    return _same_shape(value, rng)


def _ip(value: str, rng: random.Random) -> str:
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", value):
        first = rng.choice(_IP_FIRST)
        return ".".join(
            str(n) for n in (first, rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
        )
    return _same_shape(value, rng)


def _url(value: str, rng: random.Random) -> str:
    """Scheme, host and parameter names stay (the model needs them); ids in the path and values go."""
    base, question, query = value.partition("?")
    scheme, sep, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    new_path = re.sub(r"[^/]*\d[^/]*", lambda m: _same_shape(m.group(), rng), path)
    pairs = [
        (k + eq + _same_shape(v, rng, force_letters=True)) if v else k
        for k, eq, v in (p.partition("=") for p in query.split("&"))
    ]
    return f"{scheme}{sep}{host}{slash}{new_path}{question}{'&'.join(pairs) if question else ''}"


def _opaque(value: str, rng: random.Random) -> str:
    return f"{vocabulary().opaque}-{rng.randint(100000, 999999)}"


_MAKERS = {
    "ssn": _ssn,
    "phone": _phone,
    "fax": _phone,
    "zip": _zip,
    "name": _name,
    "email": _email,
    "date": _date,
    "address": _address,
    "ip": _ip,
    "url": _url,
    "biometric": _opaque,
    "photo": _opaque,
}
