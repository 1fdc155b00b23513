"""Rows of bare literals that no header names: `PATIENTS = [("Ana", "Ruiz", "1984-07-19"), …]`.

A tuple or array of a list about people (a patient, member or person named just before it) that
holds a date of birth and a person's name is a patient record whatever its column order, as a seed
script or a bulk insert writes it. Such a row's strings are given the field names they must be
(`date_of_birth` for the date, `name` for the names), and the usual field checks decide. A row
without a birth date, or without a name, says nothing.

The arguments of a call that builds a person (`Patient("Ana", "Ruiz", LocalDate.of(1984, 7, 19))`,
`Patient::new(…)`, `NewPatient(…)`, `new Member(…)`) are such a row too: constructors take a record's
fields by position, and a date may be a date constructor there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from phiwarden.detect.fields import split_words
from phiwarden.detect.rx import Match, Pattern
from phiwarden.detect.structure.tabular import Cell, delimiter_of, lines_of, split_cells
from phiwarden.detect.values import is_name, parse_date

_QUOTED_DATE = r"[\"'](?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})[\"']"
# The structure trigger: a quoted date (kept small: it joins the one keyword pass of every text).
HINT = _QUOTED_DATE
# Such a row, whole: only those are read item by item. Braces are Go's and C's rows (`{"Ana", …}`).
_ROW = Pattern(
    r"[\[,{][ \t\r\n]{0,40}[(\[{](?P<body>[^()\[\]{}\r\n]{0,300}?"
    + _QUOTED_DATE
    + r"[^()\[\]{}\r\n]{0,300}?)[)\]}]"
)
# A call whose name holds a person word and whose first argument is a string; the structure trigger
# of constructor rows.
_PERSON_CALL = (
    r"(?:patient|member|person|subscriber|beneficiar|enrollee|guarantor)[\w$]{0,30}"
    r"(?:(?:::|\.)[\w$]{1,20}){0,2}[ \t]*\([ \t\r\n]{0,40}[\"']"
)
CALL_HINT = _PERSON_CALL
_CALL = Pattern(r"(?i:[\w$]{0,30}" + _PERSON_CALL + ")")
_CALL_PERSON_WORDS = frozenset(
    {"patient", "patients", "member", "members", "person", "persons", "people", "subscriber",
     "subscribers", "beneficiary", "beneficiaries", "enrollee", "enrollees", "guarantor", "guarantors"}
)  # fmt: skip
# The argument list read: enough for a record's fields, one per line.
_MAX_ARGUMENTS_BYTES = 600
# What an argument list is read by: strings (whose commas and brackets do not count), brackets, commas.
_TOKEN = Pattern(r"\"(?:[^\"\\\r\n]|\\.)*\"|'(?:[^'\\\r\n]|\\.)*'|[()\[\]{},]")
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
        if _keyed(data, start, end):
            continue  # `{"name": "Ana", …}`: its fields have names, read by the field reader
        yield from _row(data, start, end)


def record_call_cells(data: bytes) -> Iterator[Cell]:
    """The positional arguments of calls that build a person, read as a row."""
    read_to = 0
    for m in _CALL.finditer(data):
        # A call inside the arguments just read (or given up on) is not read again: each byte once.
        if m.start < read_to:
            continue
        open_paren = data.index(b"(", m.start)
        if not _builds_a_person(data[m.start : open_paren]):
            continue
        arguments, read_to = _arguments(data, open_paren + 1)
        yield from _cells([(raw.decode("utf-8", "surrogatepass"), raw, offset) for raw, offset in arguments])


def _builds_a_person(callee: bytes) -> bool:
    return any(word in _CALL_PERSON_WORDS for word in split_words(callee.decode("utf-8", "replace")))


def _arguments(data: bytes, start: int) -> tuple[list[tuple[bytes, int]], int]:
    """The arguments from `start` to the closing parenthesis that are a string (the string's text),
    a call on one string (`LocalDate.parse("…")`, `"Ana".into()`: the string) or a date constructor
    (the whole argument), as (raw, offset); and where reading stopped. Bounded: an argument list
    left open yields nothing."""
    limit = min(len(data), start + _MAX_ARGUMENTS_BYTES)
    depth, arg_start = 0, start
    pieces: list[tuple[int, int]] = []
    for token in _TOKEN.finditer(data, start, limit):
        byte = data[token.start]
        if byte in b"([{":
            depth += 1
        elif byte in b")]}":
            if depth == 0:
                pieces.append((arg_start, token.start))
                found = (_argument(data, s, e) for s, e in pieces)
                return [f for f in found if f is not None], token.end
            depth -= 1
        elif byte == 0x2C and depth == 0:
            pieces.append((arg_start, token.start))
            arg_start = token.end
    return [], limit


def _argument(data: bytes, start: int, end: int) -> tuple[bytes, int] | None:
    raw = data[start:end]
    text = raw.strip()
    offset = start + (len(raw) - len(raw.lstrip()))
    item = _ITEM.match(text)
    if item is not None and (item.end == len(text) or text[item.end : item.end + 1] == b"."):
        g_start, g_end = _string_span(item)
        return text[g_start:g_end], offset + g_start
    inner = _ITEM.search(text)
    if inner is not None and text.endswith(b")") and text.count(b'"') + text.count(b"'") == 2:
        g_start, g_end = _string_span(inner)
        return text[g_start:g_end], offset + g_start
    if text.endswith(b")") and _birth_date(text.decode("utf-8", "surrogatepass")):
        return text, offset
    return None


def _keyed(data: bytes, start: int, end: int) -> bool:
    """Whether a row's text outside its strings has a `:` or `=` (its fields are named)."""
    pos = start
    for item in _ITEM.finditer(data, start, end):
        if data.find(b":", pos, item.start) >= 0 or data.find(b"=", pos, item.start) >= 0:
            return True
        pos = item.end
    return data.find(b":", pos, end) >= 0 or data.find(b"=", pos, end) >= 0


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


def delimited_record_cells(data: bytes) -> Iterator[Cell]:
    """The lines of a delimited file read as rows without a header (`grep` or `tail -n +2` of an
    export prints no header line): a line with one birth date and a person's name is a record. A
    file that starts with a header has columns that say what each cell is (none naming PHI: the
    dates of a release list are no birth dates), so it is read by them only."""
    delimiter = None
    for offset, line in lines_of(data):
        if delimiter is None:
            if not line.strip():
                continue
            delimiter = delimiter_of(line, 1)
            if delimiter is None or _header(split_cells(line, offset, delimiter)):
                return
        strings = [
            (raw.decode("utf-8", "surrogatepass").strip(), raw, cell_offset)
            for raw, cell_offset in split_cells(line, offset, delimiter)
            if raw.strip()
        ]
        yield from _cells(strings)


def _header(cells: list[tuple[bytes, int]]) -> bool:
    """Column names: every cell a word or identifier, none a number or a date."""
    return all(_COLUMN_NAME.fullmatch(raw.strip(b' "')) is not None for raw, _ in cells if raw.strip())


_COLUMN_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_ .#()/-]{0,40}")


def _row(data: bytes, start: int, end: int) -> Iterator[Cell]:
    strings = []  # (text, raw bytes, offset)
    for item in _ITEM.finditer(data, start, end):
        s_start, s_end = _string_span(item)
        raw = data[s_start:s_end]
        strings.append((raw.decode("utf-8", "surrogatepass"), raw, s_start))
    yield from _cells(strings)


def _string_span(item: Match) -> tuple[int, int]:
    """The text of a matched string literal, inside its double or single quotes."""
    double = item.group_span(_ITEM.group_index["d"])
    return double if double[0] >= 0 else item.group_span(_ITEM.group_index["s"])


def _cells(strings: list[tuple[str, bytes, int]]) -> Iterator[Cell]:
    """A row's cells when it holds one birth date and a person's name: (field name, raw, offset)."""
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
