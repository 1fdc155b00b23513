"""Typed, line-aware reading of a parsed policy document.

Every section parser reads through a `Table`, which knows where each key sits in the file; a wrong
type, an unknown key or a bad value raises `PolicyError` naming the file, the line and the key path.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from phiwarden.policy.locate import KeyPath, line_of


class PolicyError(ValueError):
    """An invalid policy file: the message names the file, the line and the key."""

    def __init__(
        self, message: str, *, source: str = "phiwarden.toml", line: int | None = None, key: str = ""
    ) -> None:
        self.source = source
        self.line = line
        self.key = key
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + part)
    return out


class Document:
    """The parsed file plus where its keys are."""

    def __init__(self, data: Mapping[str, Any], lines: dict[KeyPath, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def error(self, path: KeyPath, message: str) -> PolicyError:
        return PolicyError(message, source=self.source, line=line_of(self.lines, path), key=dotted(path))

    def root(self) -> Table:
        return Table(self, (), self.data)


class Table:
    """One table of the document; reads its keys with type checks and remembers which were read."""

    def __init__(self, document: Document, path: KeyPath, data: Mapping[str, Any]) -> None:
        self.document = document
        self.path = path
        self.data = data

    def error(self, key: str | int, message: str) -> PolicyError:
        return self.document.error((*self.path, key), message)

    def only(self, known: Iterable[str]) -> None:
        """Reject keys this table does not define (typos should not be silently ignored)."""
        known = list(known)
        for key in self.data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
                raise self.error(key, f"unknown key{hint}")

    def has(self, key: str) -> bool:
        return key in self.data

    def table(self, key: str) -> Table:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(key, "expected a table")
        return Table(self.document, (*self.path, key), value)

    def tables(self, key: str) -> list[Table]:
        """An array of tables (`[[key]]`)."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.error(key, "expected an array of tables ([[" + dotted((*self.path, key)) + "]])")
        return [Table(self.document, (*self.path, key, i), v) for i, v in enumerate(value)]

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_kind(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_kind(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_kind(value)}")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {_kind(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(key, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_kind(value)}")
        if not minimum <= value <= maximum:
            raise self.error(key, f"must be between {minimum} and {maximum}, got {value}")
        return float(value)

    def strings(self, key: str, default: Iterable[str] = ()) -> tuple[str, ...]:
        value = self.data.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "expected a list of strings")
        return tuple(value)

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        value = self.string(key, default)
        options = tuple(choices)
        if value not in options:
            raise self.error(key, f"must be one of {', '.join(repr(c) for c in options)}, got {value!r}")
        return value

    def size(self, key: str, default: int) -> int:
        """A byte size: a whole number or a string such as "64MiB", "500KB"."""
        value = self.data.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str):
            parsed = parse_size(value)
            if parsed is not None:
                return parsed
        raise self.error(key, f'expected a size such as 67108864 or "64MiB", got {value!r}')


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(text: str) -> int | None:
    number = text.strip().lower()
    digits = ""
    while number and (number[0].isdigit() or number[0] == "."):
        digits, number = digits + number[0], number[1:]
    unit = _UNITS.get(number.strip())
    if not digits or unit is None:
        return None
    try:
        return int(float(digits) * unit)
    except ValueError:
        return None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__
