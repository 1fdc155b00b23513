"""Step 4: apply the action to the request's text: mask, pseudonymize, sanitize identifiers.

What restores the response is the conversation's surrogates, whatever this request's action (a
masked turn, or one forwarded as it is, still gets answers naming earlier surrogates); masks are
never restored. Since answers are restored, a form of a surrogate that the client writes (a real
value: clients only ever see restored answers) is given a surrogate of its own before it leaves,
else the answer would bring back another patient's value.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from phiwarden.gateway.inspect import SEPARATOR, Inspection
from phiwarden.gateway.request import ParsedRequest, Part
from phiwarden.transform.identifiers import identifier_spans, neutral
from phiwarden.transform.mask import Masker
from phiwarden.transform.originals import OriginalForms, distinct, of_surrogates
from phiwarden.transform.restore import Restorer
from phiwarden.transform.spans import Span
from phiwarden.transform.variants import AGE
from phiwarden.transform.vault import Entry, Vault

# Renamed identifiers are not values: the client's own `SubjectId` is left as it is. An age with its
# word ("aged 94") is one detection finds itself, the number alone.
_NOT_VALUES = frozenset({"identifier", AGE})
# Blocks only the vendor's model can read (signed, or encrypted).
_SIGNED = frozenset({"thinking", "redacted_thinking"})


def mask(request: ParsedRequest, inspection: Inspection) -> None:
    """Each value found, and each other form of it anywhere in the request, by its placeholder."""
    masker = Masker()
    parts = request.parts
    values = [(v, v, c) for c, v in distinct(_found(parts, inspection)) if c not in _NOT_VALUES]
    given = OriginalForms(values)
    found = _forms_in(parts, SEPARATOR.join(p.text for p in parts), given)
    written = {parts[i].text[s.start : s.end] for i, spans in found.items() for s in spans}

    def placeholder(category: str, value: str) -> str:
        # A form stands for its value: "OKONKWO" is masked as "Marisol Okonkwo" is.
        return masker.placeholder(*(given.value(value) if value in written else (category, value)))

    for index, part in enumerate(parts):
        if part.frozen:
            continue
        spans = _with(_hit_spans(inspection, index), found.get(index, ()))
        if spans:
            part.replace(spans, placeholder)


def pseudonymize(
    request: ParsedRequest, inspection: Inspection, vault: Vault, *, sanitize_identifiers: bool
) -> dict[str, Entry]:
    """Values -> surrogates (and PHI-context identifiers -> neutral names); the restore mapping."""
    parts = request.parts
    avoid = SEPARATOR.join(p.text for p in parts)
    posing = _posing(parts, avoid, vault)
    # Every value found gets its surrogate before any text changes (one for all of its forms): the
    # other forms of the values, this request's and earlier turns', are then looked for in the text
    # as it came.
    for category, value in distinct(_found(parts, inspection), _originals(vault)):
        vault.surrogate(category, value, avoid=avoid)
    real = _real_forms(parts, avoid, vault)
    for index, part in enumerate(parts):
        if part.frozen:
            continue
        spans = _with(_with(_hit_spans(inspection, index), real.spans.get(index, ())), posing.get(index, ()))
        if spans:
            part.replace(spans, lambda c, v: real.replacements.get(v) or vault.surrogate(c, v, avoid=avoid))
    if sanitize_identifiers:
        for part in parts:
            if part.frozen or not part.identifiers:
                continue
            spans = list(identifier_spans(part.text))
            if spans:
                part.replace(
                    spans, lambda c, v: vault.assign(c, v, neutral(v) or v, avoid=avoid), values_only=True
                )
    return dict(vault.entries)


def separate(request: ParsedRequest, vault: Vault) -> dict[str, Entry]:
    """For a request otherwise forwarded as it is (allow) or masked, in a conversation that has
    surrogates: the forms of them the client wrote get surrogates of their own; the restore mapping."""
    if not vault.entries:
        return {}
    parts = request.parts
    avoid = SEPARATOR.join(p.text for p in parts)
    posing = _posing(parts, avoid, vault)
    # Earlier turns' values written again here ("Okonkwo" alone, which detection needs context for).
    real = _real_forms(parts, avoid, vault)
    for index in posing.keys() | real.spans.keys():
        spans = _with(list(real.spans.get(index, ())), posing.get(index, ()))
        parts[index].replace(
            spans, lambda c, v: real.replacements.get(v) or vault.surrogate(c, v, avoid=avoid)
        )
    return dict(vault.entries)


@dataclass(slots=True)
class _Found:
    """Where the forms of real values stand, per part, and what each form found becomes."""

    spans: dict[int, list[Span]] = field(default_factory=dict)
    replacements: dict[str, str] = field(default_factory=dict)


def _real_forms(parts: list[Part], joined: str, vault: Vault) -> _Found:
    """The forms of the vault's originals in the parts (`joined` by SEPARATOR), each with its
    surrogate written the same way."""
    given = _originals(vault)
    spans = _forms_in(parts, joined, given)
    out = _Found(spans)
    for index, found in spans.items():
        text = parts[index].text
        for span in found:
            form = text[span.start : span.end]
            out.replacements[form] = given.replacement(form)
    return out


def _originals(vault: Vault) -> OriginalForms:
    """The forms of the vault's originals (not renamed identifiers), each with its surrogate's."""
    return of_surrogates(
        frozenset(
            (fake, e.original, e.category)
            for fake, e in vault.entries.items()
            if e.category not in _NOT_VALUES
        )
    )


def _forms_in(parts: list[Part], joined: str, given: OriginalForms) -> dict[int, list[Span]]:
    """Where the parts (`joined` by SEPARATOR) hold one of `given`'s forms, per part that may be
    rewritten: one pass over the joined text, as `_posing`."""
    if not given:
        return {}
    starts = _starts(parts)
    out: dict[int, list[Span]] = {}
    for start, end, form in given.occurrences(joined):
        index = bisect.bisect_right(starts, start) - 1
        base = starts[index]
        if end > base + len(parts[index].text) or parts[index].frozen:
            continue
        out.setdefault(index, []).append(Span(start - base, end - base, given.category(form)))
    return out


def _found(parts: list[Part], inspection: Inspection) -> list[tuple[str, str]]:
    """(category, value) of the values found in the parts that may be rewritten, in order."""
    seen: dict[tuple[str, str], None] = {}
    for index, hits in inspection.hits.items():
        part = parts[index]
        if not part.frozen:
            for h in hits:
                seen[(h.category, part.text[h.start : h.end])] = None
    return list(seen)


def _hit_spans(inspection: Inspection, index: int) -> list[Span]:
    return [Span(h.start, h.end, h.category) for h in inspection.hits.get(index, ())]


def _with(spans: list[Span], more: Iterable[Span]) -> list[Span]:
    """`spans` and those of `more` that overlap none of them (what detection found comes first)."""
    return spans + [s for s in more if not any(h.start < s.end and s.start < h.end for h in spans)]


def _starts(parts: list[Part]) -> list[int]:
    """Where each part starts in the parts joined by SEPARATOR."""
    starts: list[int] = []
    position = 0
    for part in parts:
        starts.append(position)
        position += len(part.text) + len(SEPARATOR)
    return starts


def _posing(parts: list[Part], joined: str, vault: Vault) -> dict[int, list[Span]]:
    """Where the parts (`joined` by SEPARATOR) hold a form of one of the vault's surrogates, per part
    that may be rewritten. Read in one pass over the joined text: a conversation of hundreds of small
    parts would otherwise cost a search per part and form."""
    if not vault.entries:
        return {}
    given = Restorer.of(vault.entries)
    starts = _starts(parts)
    out: dict[int, list[Span]] = {}
    for start, end, form in given.occurrences(joined):
        index = bisect.bisect_right(starts, start) - 1
        base = starts[index]
        category = given.forms[form].category
        if end > base + len(parts[index].text) or parts[index].frozen or category in _NOT_VALUES:
            continue
        out.setdefault(index, []).append(Span(start - base, end - base, category))
    return out


def drop_signed_thinking(request: ParsedRequest) -> int:
    """Remove Anthropic thinking blocks (signed for, and readable by, the vendor's model alone) from a
    request going to a local model; the number removed."""
    if request.api != "messages":
        return 0
    dropped = 0
    for message in request.body.get("messages") or []:
        content: Any = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        kept = [b for b in content if not (isinstance(b, dict) and b.get("type") in _SIGNED)]
        dropped += len(content) - len(kept)
        if len(kept) != len(content):
            message["content"] = kept
    return dropped
