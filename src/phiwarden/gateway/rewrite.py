"""Step 4: apply the action to the request's text: mask, pseudonymize, sanitize identifiers.

What restores the response is the conversation's surrogates, whatever this request's action (a
masked turn, or one forwarded as it is, still gets answers naming earlier surrogates); masks are
never restored. Since answers are restored, a form of a surrogate that the client writes (a real
value: clients only ever see restored answers) is given a surrogate of its own before it leaves,
else the answer would bring back another patient's value.
"""

from __future__ import annotations

import bisect
from typing import Any

from phiwarden.gateway.inspect import SEPARATOR, Inspection
from phiwarden.gateway.request import ParsedRequest, Part
from phiwarden.transform.identifiers import identifier_spans, neutral
from phiwarden.transform.mask import Masker
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
    masker = Masker()
    for index, hits in inspection.hits.items():
        part = request.parts[index]
        if part.frozen:
            continue
        part.replace([Span(h.start, h.end, h.category) for h in hits], masker.placeholder)


def pseudonymize(
    request: ParsedRequest, inspection: Inspection, vault: Vault, *, sanitize_identifiers: bool
) -> dict[str, Entry]:
    """Values -> surrogates (and PHI-context identifiers -> neutral names); the restore mapping."""
    parts = request.parts
    avoid = SEPARATOR.join(p.text for p in parts)
    posing = _posing(parts, avoid, vault)
    for index, part in enumerate(parts):
        if part.frozen:
            continue
        spans = [Span(h.start, h.end, h.category) for h in inspection.hits.get(index, ())]
        spans += [
            s for s in posing.get(index, ()) if not any(h.start < s.end and s.start < h.end for h in spans)
        ]
        if spans:
            part.replace(spans, lambda c, v: vault.surrogate(c, v, avoid=avoid))
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
    for index, spans in _posing(parts, avoid, vault).items():
        parts[index].replace(spans, lambda c, v: vault.surrogate(c, v, avoid=avoid))
    return dict(vault.entries)


def _posing(parts: list[Part], joined: str, vault: Vault) -> dict[int, list[Span]]:
    """Where the parts (`joined` by SEPARATOR) hold a form of one of the vault's surrogates, per part
    that may be rewritten. Read in one pass over the joined text: a conversation of hundreds of small
    parts would otherwise cost a search per part and form."""
    if not vault.entries:
        return {}
    given = Restorer.of(vault.entries)
    starts: list[int] = []
    position = 0
    for part in parts:
        starts.append(position)
        position += len(part.text) + len(SEPARATOR)
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
