"""SAS data steps with inline data: `input mrn $ first $ last $ dob :yymmdd10.;` then `datalines;`.

The INPUT statement names the columns in order (a `$` marks a character column, `:fmt.` an
informat); each line after `datalines;` (or `cards;`) up to the lone `;` holds one row, its values
separated by blanks, as list input reads them. Analysts' programs carry patient rows this way.
"""

from __future__ import annotations

from collections.abc import Iterator

from phiwarden.detect.rx import Pattern
from phiwarden.detect.structure.tabular import Cell

# The structure trigger: an inline data block.
HINT = r"(?i:\b(?:datalines|cards|lines)[ \t]*;)"
# INPUT, a few more statements at most (informats, formats), then the data block's start.
_INPUT = Pattern(
    r"(?i:\binput)[ \t]+(?P<vars>[^;]{1,400});[^\n]*\n(?:[^\n]*\n){0,8}?"
    r"[ \t]*(?i:datalines|cards|lines)[ \t]*;[ \t]*\r?\n"
)
_VARIABLE = Pattern(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_TOKEN = Pattern(r"[^ \t\r\n]+")
_MAX_ROWS = 10_000


def datalines_cells(data: bytes) -> Iterator[Cell]:
    """(column name, value, byte offset) of each value of an inline data block."""
    vars_group = _INPUT.group_index["vars"]
    read_to = 0
    for m in _INPUT.finditer(data):
        columns = _columns(data[slice(*m.group_span(vars_group))])
        # A step inside the rows just read is not read again: each line once.
        if len(columns) < 2 or m.start < read_to:
            continue
        pos = m.end
        for _ in range(_MAX_ROWS):
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            # The block ends at the line with a semicolon (list input's data holds none).
            if pos >= len(data) or data.find(b";", pos, end) >= 0:
                break
            for column, token in zip(columns, _TOKEN.finditer(data, pos, end), strict=False):
                yield column, data[token.start : token.end], token.start
            pos = end + 1
        read_to = pos


def _columns(statement: bytes) -> list[str]:
    """Variable names of an INPUT statement, in order, without `$`, informats and pointers."""
    names = []
    for word in statement.split():
        if word in (b"$", b"&") or word.startswith((b":", b"$", b"@", b"+", b"(")) or word[:1].isdigit():
            continue
        m = _VARIABLE.match(word)
        if m is not None and m.end == len(word.rstrip(b"$")):
            names.append(word[: m.end].decode())
    return names
