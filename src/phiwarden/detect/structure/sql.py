"""SQL seeds and dumps: `INSERT INTO t (cols) VALUES (…), (…)` and `COPY t (cols) FROM stdin`.

Values are matched to their column by position, so a seed row is read like a record whatever the
column names' order. An INSERT without a column list takes the columns of the table's
`CREATE TABLE` in the same text, as a seed file that creates its tables carries them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

from phiwarden.detect.rx import Pattern
from phiwarden.detect.structure.tabular import Cell

_INSERT = Pattern(
    r"(?i:insert\s+(?:ignore\s+)?into)\s+(?P<table>[\w.\"`\[\]]+)\s*"
    r"(?:\((?P<cols>[^()]{1,1000})\)\s*)?(?i:values)\s*"
)
_CREATE = Pattern(
    r"(?i:create\s+(?:temporary\s+|temp\s+)?table)\s+(?i:if\s+not\s+exists\s+)?(?P<table>[\w.\"`\[\]]+)\s*\("
)
_MAX_CREATE = 20_000
_CONSTRAINTS = frozenset({"primary", "foreign", "constraint", "unique", "check", "key", "index", "exclude"})
_COPY = Pattern(r"(?i:copy)\s+[\w.\"]+\s*\((?P<cols>[^()]{1,1000})\)\s+(?i:from)\s+(?i:stdin)[^\n]*\n")
# One token of a VALUES list: a string, a parenthesis, a comma, a statement end, or anything else.
_TOKEN = Pattern(r"'(?P<s>(?:[^'\\]|''|\\.)*)'|(?P<p>[(),;])|(?P<w>[^\s(),;']+)")
_MAX_STATEMENT = 8 << 20


def _columns(raw: bytes) -> list[str]:
    return [c.strip().strip(b'"`[]').decode("utf-8", "replace") for c in raw.split(b",")]


def _table(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rpartition(".")[2].strip('"`[]').lower()


def table_columns(data: bytes) -> dict[str, list[str]]:
    """The columns of every `CREATE TABLE` in `data`, in order, by table name (lower case)."""
    tables: dict[str, list[str]] = {}
    read_to = 0
    for m in _CREATE.finditer(data):
        # A CREATE inside a column list already read (an unclosed one runs on) is not read again.
        if m.start < read_to:
            continue
        columns, depth, item = [], 0, bytearray()
        read_to = m.end
        for byte in data[m.end : m.end + _MAX_CREATE]:
            read_to += 1
            if byte == 0x28:
                depth += 1
            elif byte == 0x29:
                if depth == 0:
                    break
                depth -= 1
            elif byte == 0x2C and depth == 0:
                columns.append(bytes(item))
                item.clear()
                continue
            item.append(byte)
        columns.append(bytes(item))
        names = [c.split()[0].strip(b'"`[]').decode("utf-8", "replace") for c in columns if c.split()]
        tables[_table(data[slice(*m.group_span(_CREATE.group_index["table"]))])] = [
            n for n in names if n.lower() not in _CONSTRAINTS
        ]
    return tables


def insert_cells(data: bytes) -> Iterator[Cell]:
    index = _INSERT.group_index
    read_to = 0
    schema: dict[str, list[str]] | None = None
    for m in _INSERT.finditer(data):
        # A statement inside values already read (an unclosed list runs on) was read with them:
        # every byte is read once, however many statements a hostile text opens.
        if m.start < read_to:
            continue
        cols = m.group_span(index["cols"])
        if cols[0] >= 0:
            columns = _columns(data[slice(*cols)])
        else:
            schema = table_columns(data) if schema is None else schema
            columns = schema.get(_table(data[slice(*m.group_span(index["table"]))]), [])
            if not columns:
                continue
        read_to = yield from _values(data, m.end, columns)


def _values(data: bytes, start: int, columns: list[str]) -> Generator[Cell, None, int]:
    """Walk `(v, v, …), (…);` assigning each top-level value of a row to its column; returns where
    the walk stopped."""
    index = _TOKEN.group_index
    depth = 0
    position = 0  # column index within the current row
    # Inside a function call (STR_TO_DATE('…', '%m/%d/%Y')) only its first argument is the value.
    call_first_arg = False
    pos, end = start, min(len(data), start + _MAX_STATEMENT)
    while pos < end:
        m = _TOKEN.search(data, pos, end)
        if m is None:
            return end
        pos = m.end
        p_start, p_end = m.group_span(index["p"])
        if p_start >= 0:
            punct = data[p_start:p_end]
            if punct == b"(":
                depth += 1
                if depth == 1:
                    position = 0
                call_first_arg = depth == 2
            elif punct == b")":
                depth -= 1
                if depth < 0:
                    return pos
            elif punct == b",":
                if depth == 1:
                    position += 1
                elif depth >= 2:
                    call_first_arg = False
            elif depth == 0:
                return pos  # ';' ends the statement
            continue
        s_start, s_end = m.group_span(index["s"])
        if s_start >= 0 and (depth == 1 or (depth == 2 and call_first_arg)):
            if position < len(columns):
                yield columns[position], data[s_start:s_end], s_start
            continue
        w_start, w_end = m.group_span(index["w"])
        if w_start >= 0 and depth == 1 and position < len(columns):
            word = data[w_start:w_end]
            if word[:1].isdigit():
                yield columns[position], word, w_start
        elif w_start >= 0 and depth == 0 and data[w_start:w_end].upper() not in (b"VALUES",):
            return pos
    return pos


def copy_cells(data: bytes) -> Iterator[Cell]:
    index = _COPY.group_index
    pos = 0
    for m in _COPY.finditer(data):
        if m.start < pos:
            continue  # inside the rows of a COPY already read
        columns = _columns(data[slice(*m.group_span(index["cols"]))])
        pos = m.end
        while pos < len(data):
            newline = data.find(b"\n", pos)
            line_end = len(data) if newline < 0 else newline
            line = data[pos:line_end].rstrip(b"\r")
            if line == b"\\.":
                break
            offset = pos
            for number, cell in enumerate(line.split(b"\t")):
                if number < len(columns) and cell and cell != b"\\N":
                    yield columns[number], cell, offset
                offset += len(cell) + 1
            pos = line_end + 1
