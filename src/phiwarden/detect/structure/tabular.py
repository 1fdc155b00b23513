"""Tables whose header names the columns: CSV/TSV exports, Markdown and psql pipe tables, the
fixed-width tables that pandas prints into notebooks and logs, and HTML tables.

The header is read with the field vocabulary; each cell under a PHI column becomes a keyed value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from phiwarden.detect.rx import Pattern

# (column header, cell value, byte offset of the cell)
Cell = tuple[str, bytes, int]

_CSV_FIELD = Pattern(r"\"(?P<q>(?:[^\"]|\"\")*)\"|(?P<u>[^,\r\n]*)")
_MAX_HEADER = 4096


def lines_of(data: bytes, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(offset, line without its line break) from `start`."""
    pos = start
    size = len(data)
    while pos < size:
        newline = data.find(b"\n", pos)
        end = size if newline < 0 else newline
        line_end = end - 1 if end > pos and data[end - 1] == 0x0D else end
        yield pos, data[pos:line_end]
        pos = end + 1


def split_cells(line: bytes, offset: int, delimiter: bytes) -> list[tuple[bytes, int]]:
    if b'"' not in line:
        cells = []
        position = offset
        for cell in line.split(delimiter):
            cells.append((cell, position))
            position += len(cell) + len(delimiter)
        return cells
    if delimiter != b",":
        return split_cells(line.replace(b'"', b" "), offset, delimiter)
    cells = []
    index = _CSV_FIELD.group_index
    pos = 0
    while pos <= len(line):
        m = _CSV_FIELD.search(line, pos)
        if m is None:
            break
        q_start, q_end = m.group_span(index["q"])
        if q_start >= 0:
            cells.append((line[q_start:q_end].replace(b'""', b'"'), offset + q_start))
        else:
            u_start, u_end = m.group_span(index["u"])
            cells.append((line[u_start:u_end], offset + u_start))
        pos = m.end + 1  # past the delimiter
        if m.end >= len(line):
            break
    return cells


def delimiter_of(line: bytes, least: int = 2) -> bytes | None:
    counts = {d: line.count(d) for d in (b",", b"\t", b";", b"|")}
    delimiter, count = max(counts.items(), key=lambda item: item[1])
    return delimiter if count >= least else None


def _plain_header(names: list[str]) -> bool:
    """Column names, not a sentence or code that happens to hold commas."""
    return all(
        name and len(name) <= 40 and all(ch.isalnum() or ch in " _-./#()" for ch in name) and _units(name)
        for name in names
    )


def _units(name: str) -> bool:
    """Parentheses only around a unit or format after the name ("DOB (yyyy-mm-dd)"): not the
    parenthesis a statement opens ("INSERT INTO patients (mrn, first_name, …")."""
    if "(" not in name and ")" not in name:
        return True
    return name.count("(") == name.count(")") == 1 and 0 < name.index("(") < name.index(")") == len(name) - 1


def delimited_cells(
    data: bytes, is_phi_column: Callable[[str], bool], *, sniff: bool = False
) -> Iterator[Cell]:
    """Cells of a delimited file whose first non-empty line is a header naming a PHI column.

    With `sniff` (text of unknown origin) the header must look like one: plain column names, and at
    least two of them naming PHI. When the first line is no header, tables further down are read as
    `embedded_cells` reads them: a CSV pasted after a sentence, printed by `cat` in a tool result.
    """
    lines = lines_of(data)
    for offset, line in lines:  # noqa: B007 - the loop finds the header line and its offset
        if line.strip():
            break
    else:
        return
    # A delimited file's header may name two columns (`cut -d, -f1,3`); text of unknown origin needs three.
    delimiter = delimiter_of(line, 2 if sniff else 1) if len(line) <= _MAX_HEADER else None
    header = _header_names(line, delimiter) if delimiter is not None else []
    columns = {i: name for i, name in enumerate(header) if name and is_phi_column(name)}
    if delimiter is None or not columns or (sniff and (len(columns) < 2 or not _plain_header(header))):
        yield from embedded_cells(data, is_phi_column)
        return
    for row_offset, row in lines:
        if not row.strip():
            continue
        for index, (cell, cell_offset) in enumerate(split_cells(row, row_offset, delimiter)):
            name = columns.get(index)
            if name is not None and cell:
                yield name, cell, cell_offset


def embedded_cells(data: bytes, is_phi_column: Callable[[str], bool]) -> Iterator[Cell]:
    """Cells of delimited tables that start at any line of a text (a Markdown file, a log, a prompt).

    Text around such a table is not a table, so a header must look like one (plain column names, at
    least two naming PHI, as `sniff` asks). Its rows are the lines that follow with the delimiter in
    them, as wide as the header or not (an unquoted comma in an address, a short row): the table
    ends at a line without the delimiter (prose, a closing fence) or at the next header. Blank lines
    (a request's parts are joined by one; text blocks split a table) end it unless the next line is
    a row as wide as the header.
    """
    # One linear pattern finds the lines that could be headers; Python looks at those lines and at
    # the rows of tables they open, each line once, so code full of commas costs a regex pass only.
    pos = 0
    size = len(data)
    while pos < size:
        m = _HEADER_LINE.search(data, pos)
        if m is None:
            return
        pos = m.end + 1
        found = _embedded_header(data[m.start : m.end].rstrip(b"\r"), is_phi_column)
        if found is None:
            continue
        delimiter, width, columns = found
        after_blank = False
        for offset, row in lines_of(data, pos):
            if not row.strip():
                after_blank = True
                continue
            cells = split_cells(row, offset, delimiter) if delimiter in row else []
            if len(cells) < 2 or (after_blank and len(cells) != width):
                break
            if len(cells) != width and _embedded_header(row, is_phi_column) is not None:
                break  # the next table's header: the search goes on from it
            after_blank = False
            pos = offset + len(row) + 1
            for index, (cell, cell_offset) in enumerate(cells):
                name = columns.get(index)
                if name is not None and cell:
                    yield name, cell, cell_offset


# A line of three or more plain names between delimiters (quoted or not): a header candidate.
_NAME_CHARS = r"[0-9A-Za-z_\-./#()\x{80}-\x{10FFFF} ]+"
# A trailing delimiter (`a,b,c,` as some exporters write) ends the line with an empty name.
_HEADER_LINE = Pattern(rf'(?m)^"?{_NAME_CHARS}"?(?:[,;\t|]"?{_NAME_CHARS}"?){{2,}}[,;\t|]?\r?$')


def _embedded_header(
    line: bytes, is_phi_column: Callable[[str], bool]
) -> tuple[bytes, int, dict[int, str]] | None:
    if len(line) > _MAX_HEADER:
        return None
    delimiter = delimiter_of(line)
    if delimiter is None:
        return None
    header = _header_names(line, delimiter)
    named = header[:-1] if len(header) > 3 and not header[-1] else header
    if not _plain_header(named):
        return None
    columns = {i: name for i, name in enumerate(named) if is_phi_column(name)}
    return (delimiter, len(header), columns) if len(columns) >= 2 else None


def _header_names(line: bytes, delimiter: bytes) -> list[str]:
    cells = split_cells(line, 0, delimiter)
    return [cell.decode("utf-8", "replace").strip().strip('"') for cell, _ in cells]


# Columns of dashes between pipes (Markdown, psql) or plus signs (the MySQL client's `+---+---+`).
_PIPE_SEPARATOR = Pattern(r"^[ \t]*[|+]?[ \t]*:?-{3,}:?[ \t]*(?:[|+][ \t]*:?-{3,}:?[ \t]*)+[|+]?[ \t]*$")
_PIPE_HEADER_HINT = Pattern(r"(?m)^[ \t]*\|?[^|\r\n]+\|[^|\r\n]+\|?.*\r?\n[ \t]*[|+]?[ \t]*:?-{3,}")


def pipe_table_cells(data: bytes, is_phi_column: Callable[[str], bool]) -> Iterator[Cell]:
    """Markdown, psql and MySQL client tables: a header row, a row of dashes, then data rows (until a
    line without a pipe: MySQL's closing `+---+` border)."""
    if _PIPE_HEADER_HINT.search(data) is None:
        return
    previous: tuple[int, bytes] | None = None
    columns: dict[int, str] = {}
    for offset, line in lines_of(data):
        if columns:
            if b"|" not in line:
                columns = {}
            else:
                yield from _pipe_row(line, offset, columns)
                continue
        if previous is not None and _PIPE_SEPARATOR.fullmatch(line):
            header = [c.decode("utf-8", "replace").strip().strip("`*") for c, _ in _pipe_split(*previous)]
            columns = {i: name for i, name in enumerate(header) if name and is_phi_column(name)}
        previous = (offset, line)


def _pipe_split(offset: int, line: bytes) -> list[tuple[bytes, int]]:
    cells = []
    position = offset
    parts = line.split(b"|")
    for index, part in enumerate(parts):
        if not ((index == 0 or index == len(parts) - 1) and not part.strip()):
            stripped = part.strip()
            lead = len(part) - len(part.lstrip())
            cells.append((stripped, position + lead))
        position += len(part) + 1
    return cells


def _pipe_row(line: bytes, offset: int, columns: dict[int, str]) -> Iterator[Cell]:
    for index, (cell, cell_offset) in enumerate(_pipe_split(offset, line)):
        name = columns.get(index)
        if name is None or not cell:
            continue
        if cell.startswith(b"`") and cell.endswith(b"`") and len(cell) > 2:
            yield name, cell[1:-1], cell_offset + 1
        else:
            yield name, cell, cell_offset


# Fixed-width tables (pandas, psql -x, report dumps): columns separated by two or more spaces.
_WIDE_TOKEN = Pattern(r"[^ \t]+(?:[ ][^ \t]+)*")


def _tokens(line: bytes) -> list[tuple[int, int]]:
    return [(m.start, m.end) for m in _WIDE_TOKEN.finditer(line)]


def _clean(line: bytes) -> bytes:
    """A table line as printed inside a JSON string of a notebook: drop the quoting around it."""
    for suffix in (b'\\n",', b'\\n"', b'",', b'"'):
        if line.endswith(suffix):
            line = line[: -len(suffix)]
            break
    stripped = line.lstrip()
    if stripped.startswith(b'"'):
        index = len(line) - len(stripped)
        line = line[:index] + b" " + line[index + 1 :]
    return line


# A line that could head such a table: a field word, two spaces, then more columns.
WIDE_HINT = r"(?i:mrn|name|dob|ssn|birth\w*|phone|email|zip|address|patient\w*|member\w*)[ ]{2,}\S"
_WIDE_HINT = Pattern(WIDE_HINT)


def fixed_width_cells(data: bytes, is_phi_column: Callable[[str], bool]) -> Iterator[Cell]:
    """Rows under a header line with at least two PHI column names, matched by column overlap."""
    pos = 0
    while True:
        hint = _WIDE_HINT.search(data, pos)
        if hint is None:
            return
        line_start = data.rfind(b"\n", 0, hint.start) + 1
        pos = data.find(b"\n", hint.end)
        if pos < 0:
            return
        line = _clean(data[line_start:pos].rstrip(b"\r"))
        header = _header(line, is_phi_column) or _pandas_header(line, data, pos + 1, is_phi_column)
        if not header:
            continue
        for offset, raw in lines_of(data, pos + 1):
            line = _clean(raw)
            spans = _tokens(line)
            if len(spans) < 2:
                pos = offset
                break
            yield from _aligned_cells(line, offset, spans, header)
        else:
            return


def _header(line: bytes, is_phi_column: Callable[[str], bool]) -> list[tuple[int, int, str]]:
    spans = _tokens(line)
    if not 2 <= len(spans) <= 40 or b"  " not in line:
        return []
    names = [(s, e, line[s:e].decode("utf-8", "replace")) for s, e in spans]
    if any(" " in n for _, _, n in names) or sum(is_phi_column(n) for _, _, n in names) < 2:
        return []
    return names


# pandas pads each column to its widest entry, header included, and a header wider than its values
# stands one space from its neighbour ("member_id first_name"); the rows under it start with the index.
_WORD = Pattern(r"[^ \t]+")
_COLUMN_NAME = Pattern(r"[A-Za-z_][A-Za-z0-9_.]*")
_INDEX_ROW = Pattern(r"[ \t]*[0-9]+[ ]{2,}[^ \t]")


def _pandas_header(
    line: bytes, data: bytes, next_start: int, is_phi_column: Callable[[str], bool]
) -> list[tuple[int, int, str]]:
    if not line.startswith(b" "):
        return []
    following = next(lines_of(data, next_start), None)
    if following is None or _INDEX_ROW.match(_clean(following[1])) is None:
        return []
    spans = [(m.start, m.end) for m in _WORD.finditer(line)]
    if not 2 <= len(spans) <= 40 or not all(_COLUMN_NAME.fullmatch(line[s:e]) for s, e in spans):
        return []
    names = [(s, e, line[s:e].decode("ascii")) for s, e in spans]
    return names if sum(is_phi_column(n) for _, _, n in names) >= 2 else []


def _aligned_cells(
    line: bytes, offset: int, spans: list[tuple[int, int]], header: list[tuple[int, int, str]]
) -> Iterator[Cell]:
    for start, end in spans:
        best, best_overlap = None, 0
        for h_start, h_end, name in header:
            overlap = min(end, h_end) - max(start, h_start)
            if overlap > best_overlap:
                best, best_overlap = name, overlap
        if best is not None:
            yield best, line[start:end], offset + start


# HTML tables (pandas' `to_html`, notebook outputs, report pages): `<th>` names the columns.
HTML_HINT = r"<th[ >]"
_HTML_TAG = Pattern(r"<(?P<tag>/?(?i:table|tr|th|td))\b[^<>]{0,300}>")
_MAX_HTML_CELL = 300


def html_table_cells(data: bytes, is_phi_column: Callable[[str], bool]) -> Iterator[Cell]:
    """Cells of HTML tables under the header row (a row of `<th>` only), matched by position.

    pandas starts each row with an index cell (`<th>0</th>`) and its header with an empty one, so
    positions line up. Each tag is read once; a cell's text is read up to its next tag, bounded.
    """
    index = _HTML_TAG.group_index["tag"]
    columns: dict[int, str] = {}
    row: list[tuple[bytes, bytes, int]] = []
    for m in _HTML_TAG.finditer(data):
        start, end = m.group_span(index)
        tag = data[start:end].lower()
        if tag in (b"table", b"/table"):
            columns, row = {}, []
        elif tag == b"tr":
            row = []
        elif tag in (b"th", b"td"):
            close = data.find(b"<", m.end, m.end + _MAX_HTML_CELL)
            row.append((tag, data[m.end : close] if close >= 0 else b"", m.end))
        elif tag == b"/tr":
            if not columns and row and all(kind == b"th" for kind, _, _ in row):
                names = [text.decode("utf-8", "replace").strip() for _, text, _ in row]
                columns = {i: name for i, name in enumerate(names) if name and is_phi_column(name)}
            else:
                yield from _html_row(row, columns)
            row = []


def _html_row(row: list[tuple[bytes, bytes, int]], columns: dict[int, str]) -> Iterator[Cell]:
    for position, (_, text, offset) in enumerate(row):
        name = columns.get(position)
        value = text.strip()
        if name is not None and value:
            yield name, value, offset + len(text) - len(text.lstrip())
