"""Base64 that decodes to text: a PHI line or an HL7 message encoded inside a prompt or a file.

A run qualifies when it is long enough to hold a value (16 characters, 12 bytes), mixes upper- and
lower-case letters with a digit, "+" or "/" (base64 of text nearly always does; identifiers, words,
numbers and hex hashes do not), and uses one alphabet (standard or URL-safe). Lines of a wrapped
block (MIME and `base64` write 76 characters a line) are joined. Its first 48 bytes are decoded
first: binary (an image, a key, a hash) stops there. What decodes to UTF-8 text without control
characters is scanned by the engine, and its findings are reported over the base64 characters that
encode them (`Blob.encoded_span`).
"""

from __future__ import annotations

import binascii
import bisect
import codecs
import itertools
from dataclasses import dataclass

from phiwarden.detect.rx import Pattern

MIN_CHARS = 16
# A line of a wrapped block: as long as this, a whole number of groups, and no padding.
_MIN_WRAPPED_LINE = 40
_PREFIX_CHARS = 64

_ALPHABET = "[A-Za-z0-9+/_-]"
# Upper case, lower case and a digit (or "+" or "/"), in any order.
_MIXED = "|".join(
    f"{a}{_ALPHABET}*{b}{_ALPHABET}*{c}" for a, b, c in itertools.permutations(("[0-9+/]", "[A-Z]", "[a-z]"))
)
_RUN = Pattern(f"{_ALPHABET}*(?:{_MIXED}){_ALPHABET}*={{0,2}}")
_LINE = Pattern(r"\r?\n[ \t]*(?P<line>[A-Za-z0-9+/_-]+={0,2})")
_URL_SAFE = bytes.maketrans(b"-_", b"+/")


@dataclass(frozen=True, slots=True)
class Blob:
    """Decoded `text` and the byte spans of the view that hold its base64 characters (one per line)."""

    segments: tuple[tuple[int, int], ...]
    text: str
    # How many base64 characters the lines up to each one hold.
    counts: tuple[int, ...]

    def encoded_span(self, start: int, end: int) -> tuple[int, int]:
        """The view span of the base64 characters that encode decoded bytes [start, end)."""
        first, last = 4 * (start // 3), 4 * ((end - 1) // 3) + 3
        return self._view(first), self._view(last) + 1

    def _view(self, index: int) -> int:
        """The view offset of base64 character `index` (counted across lines)."""
        line = min(bisect.bisect_right(self.counts, index), len(self.segments) - 1)
        before = self.counts[line - 1] if line else 0
        start, end = self.segments[line]
        return min(start + index - before, end - 1)


def find(data: bytes) -> list[Blob]:
    """The base64 runs of `data` (a view) that decode to text, with that text."""
    out: list[Blob] = []
    if len(data) < MIN_CHARS:
        return out
    pos = 0
    for start, end in _RUN.spans(data):
        if start < pos or end - start < MIN_CHARS:
            continue
        segments = [(start, end)]
        pos = end
        while _wraps(data, *segments[-1]):
            line = _LINE.match(data, pos)
            if line is None:
                break
            segments.append(line.group_span(_LINE.group_index["line"]))
            pos = line.end
        text = _decoded(b"".join(data[s:e] for s, e in segments))
        if text is not None:
            counts = tuple(itertools.accumulate(e - s for s, e in segments))
            out.append(Blob(tuple(segments), text, counts))
    return out


def _wraps(data: bytes, start: int, end: int) -> bool:
    """Whether a run is a full line of a wrapped block that goes on on the next line."""
    length = end - start
    return (
        length >= _MIN_WRAPPED_LINE
        and length % 4 == 0
        and data[end - 1] != 0x3D
        and data[end : end + 1] in b"\r\n"
    )


def _decoded(encoded: bytes) -> str | None:
    """The text `encoded` decodes to, or None for binary, a mixed alphabet or a broken length."""
    standard, url_safe = b"+" in encoded or b"/" in encoded, b"-" in encoded or b"_" in encoded
    if standard and url_safe:
        return None
    if url_safe:
        encoded = encoded.translate(_URL_SAFE)
    core = encoded.rstrip(b"=")
    if len(core) % 4 == 1 or b"=" in core:
        return None
    prefix = core[:_PREFIX_CHARS]
    if (
        _text(binascii.a2b_base64(prefix + b"=" * (-len(prefix) % 4)), final=len(core) <= _PREFIX_CHARS)
        is None
    ):
        return None
    return _text(binascii.a2b_base64(core + b"=" * (-len(core) % 4)), final=True)


def _text(raw: bytes, *, final: bool) -> str | None:
    """`raw` as UTF-8 text with no control characters but tabs and line breaks, else None."""
    try:
        text: str = codecs.utf_8_decode(raw, "strict", final)[0]
    except UnicodeDecodeError:
        return None
    if not text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable():
        return None
    return text
