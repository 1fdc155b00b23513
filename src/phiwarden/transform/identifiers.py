"""PHI-context identifiers in code (`calculatePatientRiskScore`) and their neutral stand-ins.

Internal-tier code holds no PHI value, but its names tell a vendor what the system does with patient
data. With `sanitize_identifiers`, identifiers of two or more words (camelCase, PascalCase,
snake_case, SCREAMING_CASE) that contain a PHI-context word get that word replaced
(`calculateSubjectRiskScore`); the mapping is kept in the conversation's vault and restored in the
answer. Single words are prose ("the patient"), not identifiers, and are left alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import re2

from phiwarden.transform.spans import Span
from phiwarden.transform.surrogates import vocabulary

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Components of an identifier: runs of capitals before a capitalized word, capitalized words, lower
# runs and digit runs (`HTTPPatientID` -> HTTP, Patient, ID).
_COMPONENT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@functools.cache
def _words() -> tuple[dict[str, str], Any]:
    words = vocabulary().identifier_words
    ordered = sorted(words, key=len, reverse=True)
    # RE2: linear time, and a case-insensitive alternation of words runs at memory speed, where
    # Python's `re` tries every alternative at every position (milliseconds per 16 KB).
    return words, re2.compile("(?i)" + "|".join(re.escape(w) for w in ordered))


def identifier_spans(text: str) -> Iterator[Span]:
    """Spans of multi-word identifiers holding a PHI-context word."""
    _, prefilter = _words()
    seen_end = -1
    for hit in prefilter.finditer(text):
        if hit.start() < seen_end:
            continue
        start = hit.start()
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_$"):
            start -= 1
        match = _IDENTIFIER.match(text, start)
        if match is None:
            continue
        seen_end = match.end()
        if neutral(match.group()) is not None:
            yield Span(match.start(), match.end(), "identifier")


def neutral(identifier: str) -> str | None:
    """The identifier with its PHI-context words replaced, or None when it is not one to sanitize."""
    words, _ = _words()
    parts = list(_COMPONENT.finditer(identifier))
    if len(parts) < 2:
        return None
    out: list[str] = []
    position = 0
    changed = False
    for part in parts:
        replacement = words.get(part.group().lower())
        out.append(identifier[position : part.start()])
        if replacement is None:
            out.append(part.group())
        else:
            out.append(_case_like(part.group(), replacement))
            changed = True
        position = part.end()
    out.append(identifier[position:])
    return "".join(out) if changed else None


def _case_like(model: str, word: str) -> str:
    if model.isupper() and len(model) > 1:
        return word.upper()
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
