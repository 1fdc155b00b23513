"""Helpers for tests: scan a text and look at what was found, by value, in the test only."""

from __future__ import annotations

from phiwarden.detect import scan_text
from phiwarden.policy import Policy


def found(text: str, *, path: str | None = None, policy: Policy | None = None) -> list[tuple[str, str]]:
    """(category, value) of every finding; the values are read back from the test's own text."""
    return [(f.category, text[f.start : f.end]) for f in scan_text(text, path=path, policy=policy)]


def values(text: str, category: str, *, path: str | None = None, policy: Policy | None = None) -> list[str]:
    return [v for c, v in found(text, path=path, policy=policy) if c == category]


def covered(text: str, value: str, *, path: str | None = None, policy: Policy | None = None) -> bool:
    """Whether some finding overlaps the first occurrence of `value` in `text`."""
    start = text.index(value)
    end = start + len(value)
    return any(f.start < end and start < f.end for f in scan_text(text, path=path, policy=policy))
