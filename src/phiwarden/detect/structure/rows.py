"""Rows of bare literals that no header names: `PATIENTS = [("Ana", "Ruiz", "1984-07-19"), …]`.

A tuple or array of a list about people (a patient, member or person named just before it) that
holds a date of birth and a person's name is a patient record whatever its column order, as a seed
script or a bulk insert writes it. Such a row's strings are given the field names they must be
(`date_of_birth` for the date, `name` for the names), and the usual field checks decide. A row
without a birth date, or without a name, says nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from phiwarden.detect.rx import Pattern
from phiwarden.detect.structure.tabular import Cell
from phiwarden.detect.values import is_name, parse_date

_QUOTED_DATE = r"[\"'](?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})[\"']"
# The structure trigger: a quoted date (kept small: it joins the one keyword pass of every text).
HINT = _QUOTED_DATE
# Such a row, whole: only those are read item by item.
_ROW = Pattern(
    r"[\[,][ \t\r\n]{0,40}[(\[](?P<body>[^()\[\]\r\n]{0,300}?" + _QUOTED_DATE + r"[^()\[\]\r\n]{0,300}?)[)\]]"
)
_ITEM = Pattern(r"\"(?P<d>[^\"\\\r\n]{1,120})\"|'(?P<s>[^'\\\r\n]{1,120})'")
# Born long enough ago to be a patient's birth date, not a build or release date of last year.
_YOUNGEST_BIRTH_YEARS = 1


# Words before a list that say its rows are people (`PATIENTS = [`, `seed_members(`, `persons = [`),
# starting a word ("remember", "personal" and "personnel" say nothing). Not "client" or "resident":
# HTTP clients and memory-resident caches list dated rows too.
_PERSON_WORDS = Pattern(
    r"(?i:(?:^|[^a-z])(?:patient|member|people|subscriber|beneficiar|enrollee|guarantor|birth"
    r"|(?:persons?|dob|mrn)(?:[^a-z]|$)))"
)
_CONTEXT = 400


_VALUES = Pattern(r"(?i:\bvalues\b)")


def record_row_cells(data: bytes) -> Iterator[Cell]:
    body = _ROW.group_index["body"]
    statements = _Statements(data)
    for m in _ROW.finditer(data):
        if statements.in_values_list(m.start) or not _about_people(data, m.start):
            continue
        start, end = m.group_span(body)
        yield from _row(data, start, end)


class _Statements:
    """Where the SQL statement around a position has its `VALUES`, read forward once as rows come."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read_to = 0
        self.values = -1  # the current statement's last VALUES, or -1

    def in_values_list(self, pos: int) -> bool:
        """Whether `pos` sits in the VALUES of a SQL statement (read by its columns), not in the
        literals that follow a parametrized one (`executemany("… VALUES (?, ?)", [(…), …])`)."""
        end_of_statement = self.data.rfind(b";", self.read_to, pos)
        if end_of_statement >= 0:
            self.values, self.read_to = -1, end_of_statement + 1
        for m in _VALUES.finditer(self.data, self.read_to, pos):
            self.values = m.end
        self.read_to = max(self.read_to, pos)
        return self.values >= 0 and not _placeholders(self.data[self.values : self.values + 40])


def _about_people(data: bytes, row_start: int) -> bool:
    """Whether the text just before a row names people."""
    return _PERSON_WORDS.search(data, max(0, row_start - _CONTEXT), row_start) is not None


def _placeholders(after_values: bytes) -> bool:
    """`VALUES (?, ?)`, `(%s, …)`, `(:name, …)`, `($1, …)`: a parametrized query, whose rows follow
    as the literals of the code (`executemany(sql, [(…), …])`)."""
    rest = after_values.lstrip()
    return rest[:1] == b"(" and rest[1:].lstrip()[:1] in (b"?", b"%", b":", b"$", b"@")


def _row(data: bytes, start: int, end: int) -> Iterator[Cell]:
    strings = []  # (text, raw bytes, offset)
    for item in _ITEM.finditer(data, start, end):
        for group in ("d", "s"):
            s_start, s_end = item.group_span(_ITEM.group_index[group])
            if s_start >= 0:
                raw = data[s_start:s_end]
                strings.append((raw.decode("utf-8", "surrogatepass"), raw, s_start))
    births = [(raw, offset) for text, raw, offset in strings if _birth_date(text)]
    names = [(text, raw, offset) for text, raw, offset in strings if is_name(text)]
    if len(births) != 1 or not (len(names) >= 2 or any(" " in text.strip() for text, _, _ in names)):
        return
    yield "date_of_birth", *births[0]
    for _, raw, offset in names:
        yield "name", raw, offset


def _birth_date(text: str) -> bool:
    parsed = parse_date(text)
    if parsed is None or parsed[1] != len(text):
        return False
    return parsed[2].year <= dt.date.today().year - _YOUNGEST_BIRTH_YEARS
