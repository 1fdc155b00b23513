"""Replacing spans of a text (findings) with other text, right to left so offsets stay valid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    category: str


def replace_spans(text: str, spans: Sequence[Span], replacement: Callable[[str, str], str]) -> str:
    """`text` with each span replaced by `replacement(category, value)`; overlapping spans merge into
    the first (longest) one, so no part of a value survives beside its stand-in."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end), last.category)
        else:
            merged.append(span)
    out: list[str] = []
    position = 0
    for span in merged:
        out.append(text[position : span.start])
        out.append(replacement(span.category, text[span.start : span.end]))
        position = span.end
    out.append(text[position:])
    return "".join(out)
