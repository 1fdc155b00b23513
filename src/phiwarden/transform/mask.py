"""Masking: irreversible placeholders. The same value gets the same placeholder within one request,
so the model can still tell two patients apart, but nothing maps a placeholder back to its value."""

from __future__ import annotations


class Masker:
    def __init__(self) -> None:
        self._given: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, category: str, value: str) -> str:
        key = (category, value)
        known = self._given.get(key)
        if known is None:
            number = self._counts.get(category, 0) + 1
            self._counts[category] = number
            known = self._given[key] = f"[{category.upper()}_{number}]"
        return known
