"""DICOM JSON (PS3.18 F.2, what DICOMweb servers answer and pydicom's `to_json` writes).

An element is keyed by its tag: `"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Sato^Keiko"}]}`.
The tags that carry PHI are those of a DICOM file's header (`data/dicom.toml`); a person name's
value is its `Alphabetic`, `Ideographic` or `Phonetic` group, any other value is a string of the list.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from phiwarden.detect.fields import FieldClass
from phiwarden.detect.rx import Pattern
from phiwarden.detect.vocabulary import load_data_file

# The structure trigger: the value representation key that every element of DICOM JSON has.
HINT = r"\"vr\"[ \t]*:[ \t]*\"[A-Z]{2}\""
_ELEMENT = Pattern(
    r"\"(?P<tag>[0-9A-Fa-f]{8})\"\s*:\s*\{\s*\"vr\"\s*:\s*\"[A-Z]{2}\"\s*,\s*\"Value\"\s*:\s*\["
)
# The strings of a value list, up to its end; a person name's groups by their keys.
_STRING = Pattern(r"\"(?P<key>Alphabetic|Ideographic|Phonetic)\"\s*:\s*\"|\"|\]")
_LIST_LIMIT = 2000
_VALUE_LIMIT = 300


@functools.cache
def phi_tags() -> dict[str, tuple[str, FieldClass]]:
    """Tag (8 hex digits, upper case) -> (keyword, what its value is)."""
    return {
        entry["tag"].upper(): (
            entry["keyword"],
            FieldClass(entry["category"], "strong", entry.get("kind", ""), f"dicom.{entry['category']}"),
        )
        for entry in load_data_file("dicom.toml")["tag"]
    }


def iter_values(data: bytes) -> Iterator[tuple[FieldClass, bytes, int]]:
    """(meaning, value, byte offset) of each value of a PHI-bearing element."""
    tags = phi_tags()
    tag_group = _ELEMENT.group_index["tag"]
    read_to = 0
    for m in _ELEMENT.finditer(data):
        tag = data[slice(*m.group_span(tag_group))].decode().upper()
        # An element inside a value list just read is not read again: each byte once.
        if tag in tags and m.start >= read_to:
            values, read_to = _strings(data, m.end)
            for value, offset in values:
                yield tags[tag][1], value, offset


def _strings(data: bytes, start: int) -> tuple[list[tuple[bytes, int]], int]:
    """The strings of the value list that opens at `start`, in order (bounded), and where it ends."""
    limit = min(len(data), start + _LIST_LIMIT)
    pos = start
    found: list[tuple[bytes, int]] = []
    while pos < limit:
        m = _STRING.search(data, pos, limit)
        if m is None or data[m.start : m.end] == b"]":
            return found, pos if m is None else m.end
        value_start = m.end
        close = data.find(b'"', value_start, min(limit, value_start + _VALUE_LIMIT))
        if close < 0:
            break
        # A string that is a key (`"Alphabetic"` of a name written another way) is not a value.
        if data[close + 1 : close + 2].strip() != b":" and close > value_start:
            found.append((data[value_start:close], value_start))
        pos = close + 1
    return found, limit
