"""Putting original values back into responses, whole or streamed in arbitrary chunks.

`Restorer.restore(text)` replaces every surrogate, and every other form of one (`variants.py`: a
name's words, other letter cases, an SSN's other punctuation, a date's other formats), at once.
A form is taken only as a whole word: not beside a letter where it begins or ends with one, nor
beside a digit where it begins or ends with one ("97" is an age, not part of "1997"); identifiers
renamed in code are the exception (`getSubjectIdList` holds `SubjectId`).

`StreamRestorer` gives the same output for text that arrives in pieces: it emits what cannot be the
start of a form and holds back only the tail that still could be (at most the longest form; a whole
form at the very end waits for the next character, which decides whether it is a word), so a
surrogate split across SSE events is restored whole and the reader waits no longer than it must.

Matching is leftmost, longest form first, exactly like one `re.sub` over the whole text; the stream
reaches the same matches because a match is taken only once no longer form could still extend it.
"""

from __future__ import annotations

import functools
import heapq
import json
import re
from collections.abc import Iterator, Mapping

from phiwarden.transform.variants import Form, stands_alone, table
from phiwarden.transform.vault import Entry

_UNBOUNDED = frozenset({"identifier"})
_ANCHOR = 3  # characters
# Up to this many anchors, str.find per anchor beats compiling an alternation (~10 us per anchor).
_FIND_LIMIT = 32


class Restorer:
    """Surrogate (and its other forms) -> original, for one response (all its text fields)."""

    def __init__(
        self,
        entries: Mapping[str, Entry | str],
        *,
        json_strings: bool = False,
        forms: dict[str, Form] | None = None,
    ) -> None:
        if forms is None:
            forms = table(
                (fake, *((entry, "") if isinstance(entry, str) else (entry.original, entry.category)))
                for fake, entry in entries.items()
                if fake
            )
        self.json_strings = json_strings
        self._compile(forms)

    @classmethod
    def of(cls, entries: Mapping[str, Entry], *, json_strings: bool = False) -> Restorer:
        """The restorer of a vault's entries, shared by requests with the same entries (a turn finds
        the previous turn's; a response's plain and JSON restorers share their forms)."""
        return _restorer(frozenset(entries.items()), json_strings)

    def _compile(self, forms: dict[str, Form]) -> None:
        def written(text: str) -> str:
            # Inside JSON strings (tool-call arguments as text) both sides are written escaped.
            return json.dumps(text, ensure_ascii=False)[1:-1] if self.json_strings else text

        self.forms = {written(k): v for k, v in forms.items()}
        self.replacements = {k: written(v.output) for k, v in zip(self.forms, forms.values(), strict=True)}
        ordered = sorted(self.replacements, key=lambda s: (-len(s), s))
        self.longest = max((len(s) for s in ordered), default=0)
        # Where a form may start: its first characters. Searched with str.find, as a conversation's
        # new values would cost a regex compile per response (~0.3 ms for four values).
        self._anchors = tuple(dict.fromkeys(form[:_ANCHOR] for form in ordered))
        many = len(self._anchors) > _FIND_LIMIT
        self._pattern = _alternation(tuple(sorted(self._anchors))) if many else None
        # By anchor, longest first: the forms that may start where an anchor is (a form shorter
        # than an anchor is its own).
        self._starting: dict[str, list[str]] = {}
        for form in ordered:
            self._starting.setdefault(form[:_ANCHOR], []).append(form)
        self._unbounded = frozenset(k for k, v in self.forms.items() if v.category in _UNBOUNDED)

    @functools.cached_property
    def prefixes(self) -> frozenset[str]:
        """Tails a stream must hold back: every proper prefix of a form, and a whole form whose end
        must not touch the next character, which has not come yet. (Streams only: built when asked.)"""
        held = {s[:k] for s in self.replacements for k in range(1, len(s))}
        held.update(
            s for s in self.replacements if s not in self._unbounded and (s[-1].isalpha() or s[-1].isdigit())
        )
        return frozenset(held)

    def __bool__(self) -> bool:
        return bool(self._anchors)

    def occurrences(self, text: str, position: int = 0) -> Iterator[tuple[int, int, str]]:
        """(start, end, form) of each form from `position` on that stands as a word, leftmost first,
        the longest where several start at one place, none overlapping (as one regex would take
        them). Anchors are found with str.find, each searched again only once passed (a text is
        read once per anchor); many anchors (a long conversation) with one compiled alternation."""
        pattern = self._pattern
        upcoming: list[tuple[int, str]] = []
        if pattern is None:
            upcoming = [(at, a) for a in self._anchors if (at := text.find(a, position)) != -1]
            heapq.heapify(upcoming)
        json_text = self.json_strings
        while True:
            if pattern is not None:
                hit = pattern.search(text, position)
                if hit is None:
                    return
                start = hit.start()
            else:
                while upcoming and upcoming[0][0] < position:
                    at = text.find(upcoming[0][1], position)
                    if at == -1:
                        heapq.heappop(upcoming)
                    else:
                        heapq.heapreplace(upcoming, (at, upcoming[0][1]))
                if not upcoming:
                    return
                start = upcoming[0][0]
            position = start + 1
            for form in self._at(text, start):
                end = start + len(form)
                if text.startswith(form, start) and (
                    form in self._unbounded or stands_alone(text, start, end, json_text=json_text)
                ):
                    yield start, end, form
                    position = end
                    break

    def _at(self, text: str, start: int) -> Iterator[str]:
        """The forms whose anchor is at `start`, longest first."""
        for size in range(_ANCHOR, 0, -1):
            yield from self._starting.get(text[start : start + size], ())

    def find(self, text: str, position: int) -> tuple[int, int, str] | None:
        """The leftmost form at or after `position` that stands as a word, longest first."""
        return next(self.occurrences(text, position), None)

    def restore(self, text: str) -> str:
        return self.restore_from(text, 0) if self._anchors and text else text

    def restore_from(self, text: str, start: int) -> str:
        """`text[start:]` restored, the characters before `start` deciding only where words begin."""
        out: list[str] = []
        position = start
        for begin, end, form in self.occurrences(text, start):
            out.append(text[position:begin])
            out.append(self.replacements[form])
            position = end
        out.append(text[position:])
        return "".join(out)

    def stream(self) -> StreamRestorer:
        return StreamRestorer(self)


# A few conversations' latest entries: a long conversation's forms take megabytes.
@functools.lru_cache(maxsize=32)
def _forms(entries: frozenset[tuple[str, Entry]]) -> dict[str, Form]:
    return table((fake, entry.original, entry.category) for fake, entry in entries)


@functools.lru_cache(maxsize=32)
def _restorer(entries: frozenset[tuple[str, Entry]], json_strings: bool) -> Restorer:
    return Restorer({}, json_strings=json_strings, forms=_forms(entries))


@functools.lru_cache(maxsize=32)
def _alternation(anchors: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(a) for a in anchors))


class StreamRestorer:
    """Restores one stream of text deltas (one content block, one tool call's arguments)."""

    def __init__(self, restorer: Restorer) -> None:
        self.restorer = restorer
        self.pending = ""
        # The last characters released (two: an escape in JSON text): whether a form at the start of
        # `pending` begins a word.
        self.before = ""

    def feed(self, delta: str) -> str:
        """The restored text that can be released now; the rest waits for the next delta."""
        restorer = self.restorer
        if not restorer:
            return delta
        base = len(self.before)
        text = self.before + self.pending + delta
        size = len(text)
        if size == base:
            return ""
        # Start indexes of tails a form may still start at, or a whole form may end with.
        open_starts = [
            index
            for index in range(max(base, size - restorer.longest), size)
            if text[index:] in restorer.prefixes
        ]
        out: list[str] = []
        position = base
        hold = open_starts[0] if open_starts else size
        for begin, end, form in restorer.occurrences(text, base):
            if begin >= hold:
                break
            out.append(text[position:begin])
            out.append(restorer.replacements[form])
            position = end
            hold = next((i for i in open_starts if i >= position), size)
        out.append(text[position:hold])
        self.pending = text[hold:]
        if hold > base:
            self.before = text[max(0, hold - 2) : hold]
        return "".join(out)

    def flush(self) -> str:
        """The held-back tail, restored: call when the stream (or block) ends."""
        tail, self.pending = self.pending, ""
        if not tail:
            return ""
        return self.restorer.restore_from(self.before + tail, len(self.before))
