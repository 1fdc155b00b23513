"""A text as the detectors see it: UTF-8 bytes, with a way back to character offsets and lines."""

from __future__ import annotations

import bisect
from collections.abc import Sequence


class Text:
    """`text` encoded once; byte offsets from the matchers map back to characters, lines and columns.

    Offsets are code points of the text, the convention of the JSON report: a file decoded as UTF-8
    without newline translation. Lone surrogates (from undecodable bytes) round-trip as one code
    point each.
    """

    __slots__ = ("_char_lines", "data", "text")

    def __init__(self, text: str, data: bytes | None = None) -> None:
        """`data`, when given, is `text` already encoded (a file's bytes that decoded as UTF-8)."""
        self.text = text
        self.data = text.encode("utf-8", "surrogatepass") if data is None else data
        self._char_lines: list[int] | None = None

    @property
    def is_ascii(self) -> bool:
        return len(self.data) == len(self.text)

    def char_offsets(self, byte_offsets: Sequence[int]) -> list[int]:
        """Character offsets for byte offsets; one forward pass over the text for the whole batch."""
        if self.is_ascii:
            return list(byte_offsets)
        order = sorted(range(len(byte_offsets)), key=byte_offsets.__getitem__)
        result = [0] * len(byte_offsets)
        previous_byte = previous_char = 0
        for index in order:
            offset = byte_offsets[index]
            previous_char += len(self.data[previous_byte:offset].decode("utf-8", "surrogatepass"))
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
