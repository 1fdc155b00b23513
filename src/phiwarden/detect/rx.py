"""Linear-time regular expressions for untrusted text.

Every pattern that runs over scanned content goes through this module. It compiles with RE2, whose
automata guarantee time linear in the input whatever the pattern, so hostile input cannot make a scan
or a gateway request super-linear. Patterns are matched against UTF-8 bytes: the text is encoded once
and byte offsets are mapped back to character offsets only for the few spans that become findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2
from re2 import _re2

# The public `re2` wrapper builds a match object per hit; scanning calls the extension type directly
# (`_re2.RE2.Match` returns all group spans at once), which is the hot loop of every scan.
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_ANCHOR_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH
_ANCHOR_START = _re2.RE2.Anchor.ANCHOR_START

# A large alternation compiles to a DFA bigger than RE2's 8 MiB default; below this budget RE2 keeps
# the DFA (hundreds of MB/s) instead of falling back to its slower, still linear, NFA.
_MAX_MEM = 64 << 20


class PatternError(ValueError):
    """A pattern that RE2 does not accept (for example a look-around or a back-reference)."""


Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Match:
    """One match: the whole span and the span of each group ((-1, -1) when a group did not take part)."""

    spans: tuple[Span, ...]

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[0][1]

    def group_span(self, index: int) -> Span:
        return self.spans[index]


class Pattern:
    """An RE2 pattern over UTF-8 bytes, compiled on first use (start-up pays only for what a run needs).

    `compile_pattern` compiles at once, for patterns that come from users and must be checked.
    """

    __slots__ = ("_compiled", "_ignore_case", "_index", "source")

    def __init__(self, source: str, *, ignore_case: bool = False) -> None:
        self.source = source
        self._ignore_case = ignore_case
        self._compiled: Any = None
        self._index: dict[str, int] = {}

    @property
    def _regexp(self) -> Any:
        return self._compiled if self._compiled is not None else self._compile()

    def _compile(self) -> Any:
        if self._compiled is None:
            options = re2.Options()
            options.max_mem = _MAX_MEM
            options.case_sensitive = not self._ignore_case
            options.log_errors = False
            regexp = _re2.RE2(self.source.encode("utf-8"), options)
            if not regexp.ok():
                error = regexp.error()
                message = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
                raise PatternError(f"not a valid linear-time (RE2) pattern: {message}")
            self._index = {
                (name.decode() if isinstance(name, bytes) else name): index
                for name, index in regexp.NamedCapturingGroups()
            }
            self._compiled = regexp
        return self._compiled

    @property
    def group_index(self) -> dict[str, int]:
        self._regexp  # noqa: B018 - compiles the pattern, which fills the index
        return self._index

    def finditer(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Iterator[Match]:
        end = len(data) if endpos is None else min(endpos, len(data))
        match = self._regexp.Match
        while pos <= end:
            spans = match(_UNANCHORED, data, pos, end)
            first = spans[0]
            if first[0] < 0:
                return
            yield Match(tuple(spans))
            # An empty match must still move forward.
            pos = first[1] if first[1] > pos else pos + 1

    def spans(self, data: bytes) -> Iterator[Span]:
        """The (start, end) of every match: `finditer` without match objects, for hot loops that
        discard most matches."""
        end = len(data)
        match = self._regexp.Match
        pos = 0
        while pos <= end:
            first = match(_UNANCHORED, data, pos, end)[0]
            if first[0] < 0:
                return
            yield first
            pos = first[1] if first[1] > pos else pos + 1

    def search(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Match | None:
        # RE2 finds nothing when the end lies past the text: clamp it.
        end = len(data) if endpos is None else min(endpos, len(data))
        regexp = self._compiled if self._compiled is not None else self._compile()
        spans = regexp.Match(_UNANCHORED, data, pos, end)
        return None if spans[0][0] < 0 else Match(tuple(spans))

    def match(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Match | None:
        """A match that starts exactly at `pos` (the text before it still counts for `\\b`)."""
        end = len(data) if endpos is None else min(endpos, len(data))
        spans = self._regexp.Match(_ANCHOR_START, data, pos, end)
        return None if spans[0][0] < 0 else Match(tuple(spans))

    def fullmatch(self, data: bytes) -> bool:
        return bool(self._regexp.Match(_ANCHOR_BOTH, data, 0, len(data))[0][0] >= 0)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


def compile_pattern(source: str, *, ignore_case: bool = False) -> Pattern:
    """A pattern compiled now: raises `PatternError` for what RE2 refuses."""
    pattern = Pattern(source, ignore_case=ignore_case)
    pattern.group_index  # noqa: B018 - compile now, so that errors surface here
    return pattern


def literal_alternation(words: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """A pattern matching any of `words` literally, longest first so that prefixes do not win."""
    return "|".join(re2.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


class KeywordSet:
    """Which of many patterns (any case) occur in a text, found in one linear pass (an RE2 set)."""

    __slots__ = ("_set",)

    def __init__(self, patterns: list[str]) -> None:
        options = re2.Options()
        options.case_sensitive = False
        options.max_mem = _MAX_MEM
        options.log_errors = False
        self._set = _re2.Set(_UNANCHORED, options)
        for pattern in patterns:
            if self._set.Add(pattern.encode("utf-8")) < 0:
                raise PatternError(f"cannot use {pattern!r} as a keyword")
        if not self._set.Compile():
            raise PatternError("the keyword set does not compile")

    def present(self, data: bytes) -> list[int]:
        """Indices (in the order given) of the words found in `data`."""
        return list(self._set.Match(data))


class TextMatch:
    """A match in a `str`, with offsets in characters; groups by name or number."""

    __slots__ = ("_index", "_spans", "_text")

    def __init__(self, text: str, spans: tuple[Span, ...], index: dict[str, int]) -> None:
        self._text = text
        self._spans = spans
        self._index = index

    def _number(self, group: int | str) -> int:
        return group if isinstance(group, int) else self._index[group]

    def span(self, group: int | str = 0) -> tuple[int, int]:
        return self._spans[self._number(group)]

    def start(self, group: int | str = 0) -> int:
        return self.span(group)[0]

    def end(self, group: int | str = 0) -> int:
        return self.span(group)[1]

    def group(self, group: int | str = 0) -> str | None:
        start, end = self.span(group)
        return None if start < 0 else self._text[start:end]

    def text(self, group: int | str = 0) -> str:
        """The group's text, or "" when the group did not take part in the match."""
        return self.group(group) or ""

    def groupdict(self) -> dict[str, str | None]:
        return {name: self.group(name) for name in self._index}


class ShortTextPattern:
    """An RE2 pattern for short `str` values (a field value, a key), with offsets in characters.

    Runs on the UTF-8 bytes like `Pattern`; offsets are mapped back to characters, which for ASCII
    text (nearly every value) costs nothing. Compiled on first use, so that start-up does not pay
    for checks a run never needs.
    """

    __slots__ = ("_compiled", "_ignore_case", "source")

    def __init__(self, source: str, *, ignore_case: bool = False) -> None:
        self.source = source
        self._ignore_case = ignore_case
        self._compiled: Pattern | None = None

    @property
    def _pattern(self) -> Pattern:
        if self._compiled is None:
            self._compiled = Pattern(self.source, ignore_case=self._ignore_case)
        return self._compiled

    def _wrap(
        self, text: str, data: bytes, spans: tuple[Span, ...] | None, shift: int = 0
    ) -> TextMatch | None:
        if spans is None:
            return None
        if len(data) == len(text) and not shift:
            return TextMatch(text, spans, self._pattern.group_index)
        chars = {}
        for start, end in spans:
            for offset in (start, end):
                if offset >= 0 and offset not in chars:
                    chars[offset] = shift + len(data[:offset].decode("utf-8", "surrogatepass"))
        mapped = tuple((chars[s], chars[e]) if s >= 0 else (-1, -1) for s, e in spans)
        return TextMatch(text, mapped, self._pattern.group_index)

    def match(self, text: str, pos: int = 0) -> TextMatch | None:
        """A match starting at `pos`."""
        data = text[pos:].encode("utf-8", "surrogatepass")
        spans = self._pattern._regexp.Match(_ANCHOR_START, data, 0, len(data))
        if spans[0][0] < 0:
            return None
        if pos == 0:
            return self._wrap(text, data, tuple(spans))
        return self._wrap(text, data, tuple(spans), shift=pos)

    def fullmatch(self, text: str) -> TextMatch | None:
        data = text.encode("utf-8", "surrogatepass")
        spans = self._pattern._regexp.Match(_ANCHOR_BOTH, data, 0, len(data))
        return None if spans[0][0] < 0 else self._wrap(text, data, tuple(spans))

    def search(self, text: str, pos: int = 0) -> TextMatch | None:
        data = text[pos:].encode("utf-8", "surrogatepass")
        found = self._pattern.search(data)
        return None if found is None else self._wrap(text, data, found.spans, shift=pos)

    def finditer(self, text: str) -> Iterator[TextMatch]:
        data = text.encode("utf-8", "surrogatepass")
        for found in self._pattern.finditer(data):
            match = self._wrap(text, data, found.spans)
            if match is not None:
                yield match
