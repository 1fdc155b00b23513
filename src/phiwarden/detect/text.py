"""A text as the detectors see it: UTF-8 bytes, with a way back to character offsets and lines."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from phiwarden.detect.rx import Pattern

# Characters that text copied from word processors, PDFs and East Asian input methods writes where
# the detectors expect ASCII: Unicode hyphens and dashes, the minus sign, small and fullwidth
# hyphen-minus (518‑42‑7731 with U+2011), fullwidth digits, and no-break spaces. Each maps to one
# ASCII code point, so code-point offsets into the text are the same before and after.
_FOLD = {
    **dict.fromkeys((0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE63, 0xFF0D), "-"),
    **{0xFF10 + digit: str(digit) for digit in range(10)},
    **dict.fromkeys((0x00A0, 0x2007, 0x202F), " "),
}
_FOLDED = Pattern("[" + "".join(f"\\x{{{cp:04X}}}" for cp in sorted(_FOLD)) + "]")


class Text:
    """`text` encoded once; byte offsets from the matchers map back to characters, lines and columns.

    Offsets are code points of the text, the convention of the JSON report: a file decoded as UTF-8
    without newline translation. Lone surrogates (from undecodable bytes) round-trip as one code
    point each. The detectors read `data`, the text with the characters of `_FOLD` replaced by their
    ASCII form; `text` stays as given, for the values that findings describe.
    """

    __slots__ = ("_char_lines", "data", "text")

    def __init__(self, text: str, data: bytes | None = None) -> None:
        """`data`, when given, is `text` already encoded (a file's bytes that decoded as UTF-8)."""
        self.text = text
        encoded = text.encode("utf-8", "surrogatepass") if data is None else data
        if len(encoded) != len(text) and _FOLDED.search(encoded) is not None:
            encoded = text.translate(_FOLD).encode("utf-8", "surrogatepass")
        self.data = encoded
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
