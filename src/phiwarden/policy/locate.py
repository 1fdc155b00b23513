"""Find the line of a key in a TOML document, so that policy errors can point at it.

`tomllib` gives values without positions. This reads the document's lines the way a person does:
table headers (`[a.b]`, `[[a]]`) and `key = value` lines (bare, quoted and dotted keys), skipping
the inside of multi-line strings and arrays.
"""

from __future__ import annotations

from collections.abc import Iterator

KeyPath = tuple[str | int, ...]


def _split_key(text: str) -> list[str]:
    """`a."b.c".d` -> [a, b.c, d]."""
    parts: list[str] = []
    current = ""
    quote = ""
    for ch in text.strip():
        if quote:
            if ch == quote:
                quote = ""
            else:
                current += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def _assignment_key(line: str) -> str | None:
    quote = ""
    for index, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return line[:index]
        elif ch == "#":
            return None
    return None


def _lines(document: str) -> Iterator[tuple[int, str]]:
    """Logical lines worth reading: outside multi-line strings and continuation lines of arrays."""
    in_string = ""
    depth = 0
    for number, line in enumerate(document.splitlines(), start=1):
        if in_string:
            if in_string in line:
                in_string = ""
            continue
        stripped = line.strip()
        if depth == 0 and stripped and not stripped.startswith("#"):
            yield number, stripped
        for marker in ('"""', "'''"):
            if line.count(marker) % 2 == 1:
                in_string = marker
        depth += _bracket_balance(line) if (depth or _assignment_key(stripped) is not None) else 0
        depth = max(depth, 0)


def _bracket_balance(line: str) -> int:
    balance = 0
    quote = ""
    for ch in line:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            balance += 1
        elif ch == "]":
            balance -= 1
    return balance


def key_lines(document: str) -> dict[KeyPath, int]:
    """Every table and key path of the document mapped to the line that defines it."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    array_counts: dict[KeyPath, int] = {}
    for number, line in _lines(document):
        if line.startswith("[["):
            path: KeyPath = tuple(_split_key(line[2 : line.index("]]")]))
            index = array_counts.get(path, -1) + 1
            array_counts[path] = index
            table = (*path, index)
            lines.setdefault(path, number)
            lines[table] = number
            continue
        if line.startswith("["):
            table = tuple(_split_key(line[1 : line.index("]")]))
            lines[table] = number
            continue
        key = _assignment_key(line)
        if key is not None:
            path = (*table, *_split_key(key))
            lines[path] = number
    return lines


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest enclosing key or table that has one."""
    for cut in range(len(path), 0, -1):
        found = lines.get(path[:cut])
        if found is not None:
            return found
    return None
