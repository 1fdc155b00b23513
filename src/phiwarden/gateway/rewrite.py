"""Step 4: apply the action to the request's text: mask, pseudonymize, sanitize identifiers.

Returns the mapping that restores the response (surrogate -> original, the whole conversation's),
empty for masking (irreversible) and for requests forwarded as they are.
"""

from __future__ import annotations

from phiwarden.gateway.inspect import SEPARATOR, Inspection
from phiwarden.gateway.request import ParsedRequest
from phiwarden.transform.identifiers import identifier_spans, neutral
from phiwarden.transform.mask import Masker
from phiwarden.transform.spans import Span
from phiwarden.transform.vault import Vault


def mask(request: ParsedRequest, inspection: Inspection) -> None:
    masker = Masker()
    for index, hits in inspection.hits.items():
        part = request.parts[index]
        if part.frozen:
            continue
        part.replace([Span(h.start, h.end, h.category) for h in hits], masker.placeholder)


def pseudonymize(
    request: ParsedRequest, inspection: Inspection, vault: Vault, *, sanitize_identifiers: bool
) -> dict[str, str]:
    """Values -> surrogates (and PHI-context identifiers -> neutral names); the restore mapping."""
    avoid = SEPARATOR.join(p.text for p in request.parts)
    for index, hits in inspection.hits.items():
        part = request.parts[index]
        if part.frozen:
            continue
        spans = [Span(h.start, h.end, h.category) for h in hits]
        part.replace(spans, lambda c, v: vault.surrogate(c, v, avoid=avoid))
    if sanitize_identifiers:
        for part in request.parts:
            if part.frozen or not part.identifiers:
                continue
            spans = list(identifier_spans(part.text))
            if spans:
                part.replace(
                    spans, lambda c, v: vault.assign(c, v, neutral(v) or v, avoid=avoid), values_only=True
                )
    return vault.originals()
