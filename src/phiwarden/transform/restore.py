"""Putting original values back into responses, whole or streamed in arbitrary chunks.

`Restorer.restore(text)` replaces every surrogate at once. `StreamRestorer` gives the same output for
text that arrives in pieces: it emits what cannot be the start of a surrogate and holds back only the
tail that still could be (at most the longest surrogate minus one character), so a surrogate split
across SSE events is restored whole and the reader waits no longer than it must.

Matching is leftmost, longest surrogate first, exactly like `re.sub` over the whole text; the stream
reaches the same matches because a match is taken only once no longer surrogate could still extend it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping


class Restorer:
    """Surrogate -> original for one response (all its text fields share the mapping)."""

    def __init__(self, originals: Mapping[str, str], *, json_strings: bool = False) -> None:
        # Inside JSON strings (tool-call arguments as text) the original is written escaped.
        self.replacements = {
            fake: (json.dumps(orig, ensure_ascii=False)[1:-1] if json_strings else orig)
            for fake, orig in originals.items()
            if fake
        }
        ordered = sorted(self.replacements, key=lambda s: (-len(s), s))
        self.pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        self.longest = max((len(s) for s in ordered), default=0)
        # Every proper prefix of every surrogate: the tails a stream must hold back.
        self.prefixes = frozenset(s[:k] for s in ordered for k in range(1, len(s)))

    def __bool__(self) -> bool:
        return self.pattern is not None

    def restore(self, text: str) -> str:
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(lambda m: self.replacements[m.group()], text)

    def stream(self) -> StreamRestorer:
        return StreamRestorer(self)


class StreamRestorer:
    """Restores one stream of text deltas (one content block, one tool call's arguments)."""

    def __init__(self, restorer: Restorer) -> None:
        self.restorer = restorer
        self.pending = ""

    def feed(self, delta: str) -> str:
        """The restored text that can be released now; the rest waits for the next delta."""
        restorer = self.restorer
        if restorer.pattern is None:
            return delta
        buffer = self.pending + delta
        if not buffer:
            return ""
        size = len(buffer)
        # Start indexes of tails that are proper prefixes of a surrogate (a surrogate may start there).
        open_starts = [
            index
            for index in range(max(0, size - restorer.longest + 1), size)
            if buffer[index:] in restorer.prefixes
        ]
        out: list[str] = []
        position = 0
        while True:
            hold = next((i for i in open_starts if i >= position), size)
            match = restorer.pattern.search(buffer, position)
            if match is None or match.start() >= hold:
                out.append(buffer[position:hold])
                self.pending = buffer[hold:]
                return "".join(out)
            out.append(buffer[position : match.start()])
            out.append(restorer.replacements[match.group()])
            position = match.end()

    def flush(self) -> str:
        """The held-back tail, restored: call when the stream (or block) ends."""
        tail, self.pending = self.pending, ""
        return self.restorer.restore(tail)
