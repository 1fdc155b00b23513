"""A text as the detectors see it: UTF-8 bytes of its detection view, with a way back to the text.

The view (`data`) is the text with what hides or encodes a value rewritten (see normalize.py):
folded characters, removed invisible ones, decoded percent runs and `\\u` escapes. Findings are
reported over the text as given: a span of the view maps back to the characters it was read from
(a removed character inside a value belongs to it; a decoded character to its whole escape).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from phiwarden.detect import normalize


class Text:
    """`text` encoded once; byte offsets from the matchers map back to characters, lines and columns.

    Offsets are code points of the text, the convention of the JSON report: a file decoded as UTF-8
    without newline translation. Lone surrogates (from undecodable bytes) round-trip as one code
    point each.
    """

    __slots__ = ("_char_lines", "_edits", "_folded", "_tagged", "data", "text")

    def __init__(self, text: str, data: bytes | None = None) -> None:
        """`data`, when given, is `text` already encoded (a file's bytes that decoded as UTF-8)."""
        self.text = text
        encoded = text.encode("utf-8", "surrogatepass") if data is None else data
        if len(encoded) == len(text):
            self._folded, self._tagged, marked = encoded, False, False
        else:
            folded = normalize.fold(encoded)
            self._folded, self._tagged, marked = folded.data, folded.tagged, folded.marked
        # `_folded` has the code points of `text`: its byte offsets map to characters by counting.
        edits = normalize.edits(self._folded, marked=marked)
        self._edits = _EditMap(edits) if edits else None
        self.data = self._folded if self._edits is None else self._edits.apply(self._folded)
        self._char_lines: list[int] | None = None

    def char_spans(self, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """Character spans of the text for byte spans of the view, in one pass over the text."""
        if self._edits is not None:
            spans = [(self._edits.source_start(s), self._edits.source_end(e)) for s, e in spans]
        flat = self._chars([o for span in spans for o in span])
        return [(flat[2 * i], flat[2 * i + 1]) for i in range(len(spans))]

    def value(self, byte_span: tuple[int, int], char_span: tuple[int, int]) -> str:
        """The value a finding describes: as written (518‑42‑7731 keeps its U+2011 hyphens), unless
        it was read through an escape or around removed characters, or holds invisible tag
        characters: then as read, so that a preview masks what it shows."""
        as_written = self.text[char_span[0] : char_span[1]]
        if (self._edits is not None and self._edits.touches(*byte_span)) or (
            self._tagged and normalize.has_tags(as_written.encode("utf-8", "surrogatepass"))
        ):
            return self.data[byte_span[0] : byte_span[1]].decode("utf-8", "surrogatepass")
        return as_written

    def _chars(self, byte_offsets: Sequence[int]) -> list[int]:
        """Character offsets for byte offsets of the folded text."""
        if len(self._folded) == len(self.text):
            return list(byte_offsets)
        order = sorted(range(len(byte_offsets)), key=byte_offsets.__getitem__)
        result = [0] * len(byte_offsets)
        previous_byte = previous_char = 0
        for index in order:
            offset = byte_offsets[index]
            previous_char += len(self._folded[previous_byte:offset].decode("utf-8", "surrogatepass"))
            previous_byte = offset
            result[index] = previous_char
        return result

    def line_starts(self) -> list[int]:
        if self._char_lines is None:
            starts = [0]
            text = self.text
            pos = text.find("\n")
            while pos >= 0:
                starts.append(pos + 1)
                pos = text.find("\n", pos + 1)
            self._char_lines = starts
        return self._char_lines

    def position(self, char_offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset; lines end at "\\n"."""
        starts = self.line_starts()
        line = bisect.bisect_right(starts, char_offset)
        return line, char_offset - starts[line - 1] + 1


class _EditMap:
    """Where each edit lies in the view and in the folded text, for mapping offsets between them."""

    __slots__ = ("_edits", "_view_ends", "_view_starts")

    def __init__(self, edits: list[normalize.Edit]) -> None:
        self._edits = edits
        self._view_starts: list[int] = []
        self._view_ends: list[int] = []
        shift = 0  # view offset minus folded offset before the current edit
        for edit in edits:
            self._view_starts.append(edit.start + shift)
            shift += len(edit.replacement) - (edit.end - edit.start)
            self._view_ends.append(edit.end + shift)

    def apply(self, folded: bytes) -> bytes:
        pieces = []
        pos = 0
        for edit in self._edits:
            pieces.append(folded[pos : edit.start])
            pieces.append(edit.replacement)
            pos = edit.end
        pieces.append(folded[pos:])
        return b"".join(pieces)

    def source_start(self, offset: int) -> int:
        """The folded offset where a span that starts at view `offset` starts: after the removed
        characters just before it, at the start of an escape it begins inside."""
        index = bisect.bisect_right(self._view_starts, offset) - 1
        if index < 0:
            return offset
        edit, view_start, view_end = self._edits[index], self._view_starts[index], self._view_ends[index]
        if offset >= view_end:
            return edit.end + offset - view_end
        return edit.start + edit.scale * (offset - view_start)

    def source_end(self, offset: int) -> int:
        """The folded offset where a span that ends at view `offset` ends: before the removed
        characters just after it (but for marks on its last character), at the end of an escape it
        ends inside."""
        index = bisect.bisect_left(self._view_starts, offset)
        if index < len(self._edits) and self._view_starts[index] == offset == self._view_ends[index]:
            following = self._edits[index]
            if following.attached:
                return following.end
        index -= 1
        if index < 0:
            return offset
        edit, view_start, view_end = self._edits[index], self._view_starts[index], self._view_ends[index]
        if offset >= view_end:
            return edit.end + offset - view_end
        return edit.start + edit.scale * (offset - view_start) if edit.scale else edit.end

    def touches(self, start: int, end: int) -> bool:
        """Whether view bytes [start, end) were read through an edit: a replacement in them, or a
        removal strictly inside them."""
        index = bisect.bisect_right(self._view_ends, start)
        return index < len(self._edits) and self._view_starts[index] < end
