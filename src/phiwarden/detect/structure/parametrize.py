"""Parametrized tests: rows of bare literals under names declared once.

    @pytest.mark.parametrize("name,dob,ssn", [("Ana Ruiz", "1984-07-19", …), …])
    tests := []struct{ name, mrn string; dob string }{{"Ana Ruiz", "40981723", "1984-07-19"}, …}

The argument (or struct field) names head the values of every row that follows, as a CSV header
heads its columns, so a row of bare literals is read like a record.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

from phiwarden.detect.rx import Pattern
from phiwarden.detect.structure.tabular import Cell

_HEAD = Pattern(
    r"parametrize\(\s*(?:argnames\s*=\s*)?[\"'](?P<names>[\w ,]{1,500})[\"']\s*,\s*(?:argvalues\s*=\s*)?\["
)
# Go: the fields of an anonymous struct, then the opening brace of the slice of rows.
_GO_HEAD = Pattern(r"\[\]struct[ \t]*\{(?P<fields>[^{}]{1,1000})\}[ \t]*\{")
# One line (or `;`-separated part) of a struct body: the field names before their type.
_GO_FIELDS = Pattern(r"(?m:^)[ \t]*(?P<names>[A-Za-z_]\w*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)*)[ \t]+[^\s,]")
# One token of the rows: a string, a bracket or comma, or anything else up to one of those.
_TOKEN = Pattern(
    r"\"(?P<d>(?:[^\"\\\n]|\\.)*)\"|'(?P<s>(?:[^'\\\n]|\\.)*)'|`(?P<b>[^`\n]*)`"
    r"|(?P<p>[()\[\]{},])|(?P<w>[^\s()\[\]{},\"'`]+)"
)
_MAX_ROWS_BYTES = 1 << 20


def parametrize_cells(data: bytes) -> Iterator[Cell]:
    index = _HEAD.group_index
    read_to = 0
    for m in _HEAD.finditer(data):
        # A header inside rows already read was read with them: every byte is read once.
        if m.start < read_to:
            continue
        raw = data[slice(*m.group_span(index["names"]))].decode("ascii", "replace")
        names = [name.strip() for name in raw.split(",") if name.strip()]
        if names:
            read_to = yield from _rows(data, m.end, names)


def table_test_cells(data: bytes) -> Iterator[Cell]:
    """Go's table-driven tests: the rows of a slice of an anonymous struct, by field position."""
    fields = _GO_HEAD.group_index["fields"]
    read_to = 0
    for m in _GO_HEAD.finditer(data):
        if m.start < read_to:
            continue
        body = data[slice(*m.group_span(fields))].replace(b";", b"\n")
        names = [
            name.strip().decode("ascii", "replace")
            for line in _GO_FIELDS.finditer(body)
            for name in body[slice(*line.group_span(_GO_FIELDS.group_index["names"]))].split(b",")
        ]
        if names:
            read_to = yield from _rows(data, m.end, names)


def _rows(data: bytes, start: int, names: list[str]) -> Generator[Cell, None, int]:
    """Each row's top-level literals under the argument name at their position; returns where the
    reading stopped."""
    groups = _TOKEN.group_index
    depth = 0  # 0: the list of rows; 1: inside a row (a tuple, a list, `pytest.param(…)`, a struct)
    position = 0
    pos, end = start, min(len(data), start + _MAX_ROWS_BYTES)
    while pos < end:
        m = _TOKEN.search(data, pos, end)
        if m is None:
            return end
        pos = m.end
        p_start, p_end = m.group_span(groups["p"])
        if p_start >= 0:
            punct = data[p_start:p_end]
            if punct in (b"(", b"[", b"{"):
                depth += 1
                position = 0 if depth == 1 else position
            elif punct in (b")", b"]", b"}"):
                depth -= 1
                if depth < 0:
                    return pos  # the end of the list of rows
            elif depth == 1:
                position += 1
            continue
        # A one-name parametrize lists bare values: ["Ana Ruiz", "Bo Li"].
        column = position if depth == 1 else 0 if depth == 0 and len(names) == 1 else -1
        if not 0 <= column < len(names):
            continue
        for group in ("d", "s", "b"):
            s_start, s_end = m.group_span(groups[group])
            if s_start >= 0:
                yield names[column], data[s_start:s_end], s_start
        w_start, w_end = m.group_span(groups["w"])
        if w_start >= 0 and data[w_start : w_start + 1].isdigit():
            yield names[column], data[w_start:w_end], w_start
    return pos
