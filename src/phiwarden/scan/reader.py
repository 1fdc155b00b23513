"""Turning a file's bytes into text the detectors read, or saying why that is not possible.

Text is decoded as UTF-8 without newline translation, so offsets in reports match what an editor
shows; undecodable bytes become one code point each (surrogate escapes) and the file is flagged.
UTF-16 files with a byte-order mark are decoded as such. DICOM files are recognised by their
preamble; other binary files are skipped with a reason.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "dicom", "binary"]

_SNIFF = 8192
_DICOM_MAGIC_OFFSET = 128


@dataclass(frozen=True, slots=True)
class Decoded:
    kind: Kind
    text: str = ""
    # Set when some bytes were not valid UTF-8 (they are kept as escapes, one code point each).
    invalid_utf8: bool = False
    encoding: str = "utf-8"


def is_dicom(data: bytes) -> bool:
    return data[_DICOM_MAGIC_OFFSET : _DICOM_MAGIC_OFFSET + 4] == b"DICM"


# Control bytes that text does not contain (tab, newlines, form feed and escape are allowed).
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)


def _looks_binary(head: bytes) -> bool:
    if b"\x00" not in head:
        return False
    # A stray NUL in a log is still text; a file of NULs and control bytes is not.
    controls = len(head.translate(None, _NOT_CONTROL))
    return controls > len(head) // 10 or head.count(b"\x00") > 2


def decode(data: bytes) -> Decoded:
    if is_dicom(data):
        return Decoded("dicom")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return Decoded("text", data.decode("utf-16"), encoding="utf-16")
        except UnicodeDecodeError:
            return Decoded("binary")
    if _looks_binary(data[:_SNIFF]):
        return Decoded("binary")
    try:
        return Decoded("text", data.decode("utf-8"))
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
    # Not one byte above ASCII made a UTF-8 character: a single-byte encoding, as Excel and older
    # systems export (Windows-1252, a superset of Latin-1's letters). Read so, `Müller` is a name,
    # and offsets stay those of one character per byte.
    try:
        text.encode("ascii", "surrogateescape")  # fails on any character that UTF-8 did make
        return Decoded("text", data.decode("cp1252"), encoding="windows-1252")
    except UnicodeError:
        return Decoded("text", text, invalid_utf8=True)
