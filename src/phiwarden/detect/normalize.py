"""What the detectors read instead of what is written: the rewrites of the detection view.

A value can be written so that a person or a model reads it but a pattern does not: 518-42-7731
with a zero-width joiner inside, in Arabic-Indic or mathematical bold digits, with thin spaces
between its groups, `Marisol%20Okonkwo` in a URL, `Jos\\u00e9` as `json.dumps` writes it. The
detectors read the text with these rewritten (`text.Text` keeps the way back to the text as given):

- Folds, one code point for one (offsets do not move): Unicode hyphens and dashes and the minus sign
  to "-", every other character with a decimal digit value (Arabic-Indic, Devanagari, fullwidth,
  mathematical, superscript, circled…) to its ASCII digit, Unicode spaces to " ", and the invisible
  tag characters (U+E0020–E007E) to the ASCII characters they shadow.
- Removals: format characters (zero-width space, joiner and non-joiner, word joiner, soft hyphen,
  byte order mark, bidirectional controls) wherever they are, and combining marks and variation
  selectors on an ASCII character. Between a lower-case and an upper-case letter a removed run
  separates two words (`Marisol<U+00AD>Okonkwo`) and is read as a space.
- Line numbers a tool printed before every line (Claude Code's Read: `     1→`; `cat -n` and `nl`:
  `     1<TAB>`), removed where consecutive lines carry consecutive numbers: what a line starts
  with (an HL7 segment, a table's header) starts it again.
- Decodings: percent-encoded runs (`%20`, `%C3%A9`: UTF-8, as URLs write it) and `\\uXXXX` escapes
  (JSON, JavaScript, Java, Python string literals), when they decode to text.

Each rewrite is an `Edit` of the folded text's UTF-8 bytes. A non-ASCII text is searched once for
anything to fold or remove; an ASCII text pays two byte searches (for "%" and a backslash) and, when
it holds those, one pass of the escape pattern each.
"""

from __future__ import annotations

import codecs
import functools
import unicodedata
from dataclasses import dataclass

from phiwarden.detect.rx import Pattern

_DASHES = (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE63, 0xFF0D)
_TAGS = range(0xE0020, 0xE007F)
_FOLDS = (
    "[" + "".join(f"\\x{{{cp:04X}}}" for cp in _DASHES) + r"\x{E0020}-\x{E007E}]"
    r"|[^\x00-\x7F\P{Nd}]|\p{No}|[^\x00-\x7F\P{Zs}]"
)
# A character of a non-ASCII text that is folded or removed: one pass tells whether there is any.
_NEEDS_VIEW = Pattern(_FOLDS + r"|\p{Cf}|[\x00-\x7F][\p{Mn}\p{Me}]")
_FOLDABLE = Pattern(_FOLDS)
_TAG = Pattern(r"[\x{E0020}-\x{E007E}]")
# Invisible runs: on an ASCII character (marks, selectors and format characters), or format
# characters anywhere (a zero-width space between two digits).
_INVISIBLE = Pattern(r"[\x00-\x7F](?P<attached>[\p{Mn}\p{Me}\p{Cf}]+)|(?P<loose>\p{Cf}+)")
# One escape at a time: a literal first byte lets RE2 skip to it (a repeated group would not).
_PERCENT = Pattern(r"%[0-9A-Fa-f]{2}")
_U_ESCAPE = Pattern(r"\\u[0-9A-Fa-f]{4}")
# What a `\\uXXXX` escape may stand for in the view: not a quote, a backslash or a control
# character (a line break), which would change where the string that holds it ends.
_KEPT_ESCAPED = frozenset("\"'`\\")
# A line number a tool printed: right-aligned before an arrow (Read) or in six columns before a tab
# (`cat -n`, `nl`; a TSV's own index column is not padded).
_LINE_NUMBER = Pattern(r"(?m)^ *(?P<arrow>[0-9]{1,9})\x{2192}|^(?P<tab> {0,5}[0-9]{1,6})\t")
_ARROW = "\u2192".encode()


@dataclass(frozen=True, slots=True)
class Edit:
    """Bytes [start, end) of the folded text read as `replacement`.

    `scale` is how many bytes of the text each byte of the replacement stands for when that is
    the same for all of them (3 for a percent-encoded run), so that a span inside the run maps to
    its own escapes; 0 when the replacement is read as a whole.
    """

    start: int
    end: int
    replacement: bytes
    scale: int = 0
    # Marks on the character before (a keycap's U+FE0F U+20E3): a span that ends with that
    # character ends after them.
    attached: bool = False


@functools.lru_cache(maxsize=4096)
def _fold(ch: str) -> bytes | None:
    """The ASCII character `ch` is read as, or None when it is read as itself."""
    cp = ord(ch)
    if cp in _DASHES:
        return b"-"
    if cp in _TAGS:
        return bytes([cp - 0xE0000])
    if unicodedata.category(ch) == "Zs":
        return b" "
    digit = unicodedata.digit(ch, None)
    return None if digit is None else str(digit).encode()


@dataclass(frozen=True, slots=True)
class Folded:
    data: bytes
    # Whether invisible tag characters were folded (a preview must not show them as written).
    tagged: bool = False
    # Whether the text holds anything to fold or remove (else the removals need no pass).
    marked: bool = False


def fold(encoded: bytes) -> Folded:
    """Non-ASCII UTF-8 `encoded` with the one-for-one folds applied."""
    first = _NEEDS_VIEW.search(encoded)
    if first is None:
        return Folded(encoded)
    pieces: list[bytes] = []
    pos = 0
    tagged = False
    for m in _FOLDABLE.finditer(encoded, first.start):
        ch = encoded[m.start : m.end].decode("utf-8", "surrogatepass")
        ascii_form = _fold(ch)
        if ascii_form is not None:
            pieces += (encoded[pos : m.start], ascii_form)
            pos = m.end
            tagged = tagged or ord(ch) in _TAGS
    if not pieces:
        return Folded(encoded, marked=True)
    pieces.append(encoded[pos:])
    return Folded(b"".join(pieces), tagged, marked=True)


def has_tags(encoded: bytes) -> bool:
    return _TAG.search(encoded) is not None


def edits(data: bytes, *, marked: bool) -> list[Edit]:
    """The removals and decodings of the folded text `data`, in text order, none overlapping;
    `marked` when its folding found characters to fold or remove."""
    out: list[Edit] = []
    if marked:
        out += _invisible(data)
    # Byte searches first: numbered output holds an arrow, or starts at line 1 in six columns.
    if _ARROW in data or b"     1\t" in data:
        out += _line_numbers(data)
    # Byte searches first: most texts hold neither, and these cost less than a pattern's pass.
    if b"%" in data:
        out += _percent_runs(data)
    if b"\\" in data:
        out += _u_escapes(data)
    if len(out) > 1:
        out.sort(key=lambda e: e.start)
    return out


def _line_numbers(data: bytes) -> list[Edit]:
    """Removals of the line numbers of runs of two or more lines numbered one after another."""
    out: list[Edit] = []
    index = _LINE_NUMBER.group_index
    run: list[Edit] = []
    expected_start, expected_number = -1, -1
    for m in _LINE_NUMBER.finditer(data):
        start, end = m.group_span(index["arrow"])
        if start < 0:
            start, end = m.group_span(index["tab"])
        number = int(data[start:end])
        if m.start != expected_start or number != expected_number:
            if len(run) > 1:
                out += run
            run = []
        run.append(Edit(m.start, m.end, b""))
        newline = data.find(b"\n", m.end)
        expected_start, expected_number = (newline + 1 if newline >= 0 else -1), number + 1
    return out + run if len(run) > 1 else out


def _invisible(data: bytes) -> list[Edit]:
    out = []
    index = _INVISIBLE.group_index
    attached, loose = index["attached"], index["loose"]
    for m in _INVISIBLE.finditer(data):
        start, end = m.group_span(attached)
        if start < 0:
            start, end = m.group_span(loose)
        before, after = data[start - 1 : start], data[end : end + 1]
        # `Marisol<U+00AD>Okonkwo`: a removed run at a lower-to-upper boundary separates words.
        if before.islower() and after.isupper():
            out.append(Edit(start, end, b" "))
        else:
            out.append(Edit(start, end, b"", attached=m.group_span(attached)[0] >= 0))
    return out


def _percent_runs(data: bytes) -> list[Edit]:
    out: list[Edit] = []
    run_start = run_end = -1
    for m in _PERCENT.finditer(data):
        if m.start != run_end:
            out += _percent_run(data, run_start, run_end)
            run_start = m.start
        run_end = m.end
    return out + _percent_run(data, run_start, run_end)


def _percent_run(data: bytes, start: int, end: int) -> list[Edit]:
    """Edits for the escapes in data[start:end] (none when empty)."""
    if start < 0:
        return []
    # URL encoders write upper-case hex (RFC 3986); one lower-case escape alone is more often a
    # printf format ("%2d", "%3d") than a URL.
    if end - start == 3 and any(97 <= b <= 102 for b in data[start + 1 : end]):
        return []
    raw = bytes.fromhex(data[start:end].replace(b"%", b"").decode("ascii"))
    return _valid_utf8_parts(raw, start)


def _valid_utf8_parts(raw: bytes, origin: int) -> list[Edit]:
    """Edits for the parts of decoded `raw` that are UTF-8 (invalid bytes keep their escapes)."""
    out = []
    pos = 0
    view = memoryview(raw)
    while pos < len(raw):
        valid_end = _utf8_end(view, pos)
        if valid_end > pos:
            out.append(Edit(origin + 3 * pos, origin + 3 * valid_end, raw[pos:valid_end], scale=3))
        pos = max(valid_end, pos + 1)
        # Past the invalid byte(s): decoding resumes at the next byte that can start a character.
        while pos < len(raw) and 0x80 <= raw[pos] < 0xC0:
            pos += 1
    return out


def _utf8_end(view: memoryview, pos: int) -> int:
    """Where the UTF-8 that starts at `pos` ends (the first invalid byte, or the end).

    Decoded a window at a time, doubling from 64 bytes: CPython's decoder sets aside room for all it
    is given before it reads a byte, so decoding the whole rest at every invalid byte would make
    text that alternates valid and invalid escapes (`%FF%41` repeated) quadratic.
    """
    window = 64
    size = len(view)
    while pos < size:
        end = min(size, pos + window)
        try:
            # Not final before the end: a character cut by the window's edge is read with the next.
            _, read = codecs.utf_8_decode(view[pos:end], "strict", end == size)
        except UnicodeDecodeError as error:
            return pos + error.start
        pos += read
        window *= 2
    return size


def _u_escapes(data: bytes) -> list[Edit]:
    out: list[Edit] = []
    pending_high: tuple[int, int] | None = None  # (start, code) of a high surrogate just read
    for m in _U_ESCAPE.finditer(data):
        start = m.start
        backslashes = 1
        while start - backslashes >= 0 and data[start - backslashes] == 0x5C:
            backslashes += 1
        if backslashes % 2 == 0:  # `\\u00e9` is a backslash and the letters "u00e9"
            pending_high = None
            continue
        code = int(data[m.end - 4 : m.end], 16)
        if 0xD800 <= code < 0xDC00:
            pending_high = (start, code)
            continue
        if 0xDC00 <= code < 0xE000:
            if pending_high is not None and pending_high[0] + 6 == start:
                pair = 0x10000 + ((pending_high[1] - 0xD800) << 10) + (code - 0xDC00)
                out.append(Edit(pending_high[0], m.end, chr(pair).encode("utf-8")))
            pending_high = None
            continue
        pending_high = None
        ch = chr(code)
        if ch in _KEPT_ESCAPED or code < 0x20 or code == 0x7F:
            continue
        out.append(Edit(start, m.end, ch.encode("utf-8")))
    return out
