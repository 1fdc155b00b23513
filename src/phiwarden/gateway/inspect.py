"""Steps 1 and 2: detect PHI and secrets in every part of a request, and classify the request.

Detection runs once over a batch of the small parts joined by blank lines (one engine call costs tens
of microseconds whatever the size, and a coding agent's request holds hundreds of small strings), and
separately, with a cache, over large parts and parts read from a file (their path matters: CSV,
repository code). Agents resend the whole conversation every turn, so large parts are mostly seen
before: the cache keys them by a digest and keeps only offsets and categories, never the text.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from phiwarden.classify import Classification, classifier_for, highest
from phiwarden.detect import engine_for
from phiwarden.detect.finding import Finding
from phiwarden.gateway.request import ParsedRequest, Part
from phiwarden.policy.gateway import Tier
from phiwarden.policy.model import Policy

SEPARATOR = "\n\n"
LARGE_PART = 4096
BATCH_LIMIT = 256 * 1024
CACHE_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class Hit:
    """A finding relative to its part: offsets into `part.text`."""

    start: int
    end: int
    category: str
    confidence: float
    rule: str


@dataclass(slots=True)
class Inspection:
    hits: dict[int, list[Hit]] = field(default_factory=dict)  # part index -> hits
    counts: Counter[str] = field(default_factory=Counter)
    tier: Tier = "public"
    reasons: tuple[str, ...] = ()
    # The tier once every detected value is replaced (masking, pseudonymization).
    residual_tier: Tier = "public"
    residual_reasons: tuple[str, ...] = ()
    binary_kinds: frozenset[str] = frozenset()

    def by_location(self, parts: Sequence[Part]) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for index, hits in self.hits.items():
            where = short_location(parts[index].location)
            out.setdefault(where, Counter()).update(h.category for h in hits)
        return out

    def values(self, parts: Sequence[Part]) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], None] = {}
        for index, hits in self.hits.items():
            text = parts[index].text
            for h in hits:
                seen[(h.category, text[h.start : h.end])] = None
        return list(seen)


def short_location(location: str) -> str:
    """`messages[2].content[0].text` -> `messages[2].content[0]`: where a developer looks."""
    for suffix in (".text", ".thinking", ".data"):
        if location.endswith(suffix):
            return location[: -len(suffix)]
    return location


class Inspector:
    """Detection and classification compiled for one policy; build once per process."""

    def __init__(self, policy: Policy, *, binary_tier: Tier = "restricted") -> None:
        self.policy = policy
        self.engine = engine_for(policy)
        self.classifier = classifier_for(policy)
        self.binary_tier = binary_tier
        self._cache: OrderedDict[bytes, tuple[Hit, ...]] = OrderedDict()
        self._lock = threading.Lock()
        # Warm the engine's lazily compiled stages (prose mode's too) now, not in the first request.
        warm_up = "Patient John Smith DOB 1961-03-04 SSN 478-22-9134 MRN 00482913 x@example.org"
        self.engine.scan(warm_up)
        self.engine.scan(f"Write a reminder to Marisol Okonkwo, seen 03/14/2025. {warm_up}", prose=True)

    def _scan(self, text: str, path: str | None, *, prose: bool = False) -> list[Hit]:
        # What has no path is what a person typed or pasted into a prompt: read as prose too (names
        # introduced by "to", "patient", "Dr."), which file scans leave off for precision in code.
        # A shell command's output keeps the prose rules with its file's path (Part.shell_output).
        findings = self.engine.scan(text, path=path, prose=prose or path is None)
        return [Hit(f.start, f.end, f.category, f.confidence, f.rule) for f in findings]

    def _scan_cached(self, text: str, path: str | None, *, prose: bool = False) -> list[Hit]:
        # No path (prose mode) and an empty path (file mode) must not share an entry, nor a file's
        # content read with and without the prose rules.
        mode = "" if path is None else ("|" if prose else "/") + path
        digest = hashlib.blake2b(
            f"{mode}\x00{text}".encode("utf-8", "surrogatepass"), digest_size=20
        ).digest()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None:
                self._cache.move_to_end(digest)
                return list(cached)
        hits = self._scan(text, path, prose=prose)
        with self._lock:
            self._cache[digest] = tuple(hits)
            if len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return hits

    def inspect(
        self, request: ParsedRequest, *, is_surrogate: Callable[[str], bool] | None = None
    ) -> Inspection:
        return self.judge(request, self.scan(request), is_surrogate=is_surrogate)

    def scan(self, request: ParsedRequest) -> dict[int, list[Hit]]:
        """What detection finds, per part index. Needs nothing of the conversation's state, so the
        gateway runs it while the state loads (the engine releases the GIL while it matches)."""
        parts = request.parts
        found: dict[int, list[Hit]] = {}
        batch: list[int] = []
        for index, part in enumerate(parts):
            # Signed thinking and vendor-encrypted blobs come back unchanged every turn, like files.
            if part.path is not None or part.frozen or len(part.text) >= LARGE_PART:
                hits = self._scan_cached(part.text, part.path, prose=part.shell_output)
                if hits:
                    found[index] = hits
            else:
                batch.append(index)
        for group in _batches(batch, parts):
            self._scan_batch(found, group, parts)
        return found

    def judge(
        self,
        request: ParsedRequest,
        found: dict[int, list[Hit]],
        *,
        is_surrogate: Callable[[str], bool] | None = None,
    ) -> Inspection:
        """The inspection of what `scan` found, then the request classified.

        In text the gateway may not rewrite (signed thinking the client sends back as it came), a
        surrogate given earlier in this conversation, in any of its forms, is not PHI. Everywhere
        else the client only ever saw restored values: a value there equal to a surrogate is a real
        one, and gets a surrogate of its own."""
        out = Inspection()
        parts = request.parts
        for index, hits in found.items():
            text = parts[index].text
            kept = (
                [h for h in hits if not is_surrogate(text[h.start : h.end])]
                if is_surrogate is not None and parts[index].frozen
                else hits
            )
            if kept:
                out.hits[index] = kept
                out.counts.update(h.category for h in kept)
        self._classify(out, request)
        return out

    def _scan_batch(self, found: dict[int, list[Hit]], group: list[int], parts: Sequence[Part]) -> None:
        starts: list[int] = []
        pieces: list[str] = []
        position = 0
        for index in group:
            starts.append(position)
            pieces.append(parts[index].text)
            position += len(parts[index].text) + len(SEPARATOR)
        joined = SEPARATOR.join(pieces)
        for hit in self._scan(joined, None):
            slot = bisect.bisect_right(starts, hit.start) - 1
            base = starts[slot]
            length = len(parts[group[slot]].text)
            start, end = hit.start - base, min(hit.end - base, length)
            if start >= length or end <= start:
                continue
            found.setdefault(group[slot], []).append(Hit(start, end, hit.category, hit.confidence, hit.rule))

    def _classify(self, out: Inspection, request: ParsedRequest) -> None:
        parts = request.parts
        plain = [p.text for p in parts if p.path is None and p.classified]
        results: list[tuple[Classification, Classification]] = []
        plain_hits = [self._finding(h) for i, hs in out.hits.items() if parts[i].path is None for h in hs]
        data = SEPARATOR.join(plain).encode("utf-8", "surrogatepass") if plain else None
        residual = self.classifier.classify(data, path=None, findings=())
        results.append((residual, self._with_findings(residual, plain_hits)))
        for index, part in enumerate(parts):
            if part.path is None:
                continue
            residual = self.classifier.classify(
                part.text.encode("utf-8", "surrogatepass"), path=part.path, findings=()
            )
            hits = [self._finding(h) for h in out.hits.get(index, ())]
            results.append((residual, self._with_findings(residual, hits)))
        # Values in text the gateway may not rewrite (signed thinking, the model name) stay after masking.
        frozen = sorted({h.category for i, hs in out.hits.items() if parts[i].frozen for h in hs})
        if frozen:
            reason = (
                f"PHI in text that cannot be rewritten (signed thinking, the model name): {', '.join(frozen)}"
            )
            results.append((Classification("restricted", (reason,)),) * 2)
        if request.binaries:
            kinds = sorted({b.kind for b in request.binaries})
            out.binary_kinds = frozenset(kinds)
            note = Classification(self.binary_tier, (f"{', '.join(kinds)} cannot be inspected for PHI",))
            results.append((note, note))
        out.residual_tier = highest(r.tier for r, _ in results)
        out.residual_reasons = _reasons(r for r, _ in results if r.tier == out.residual_tier)
        out.tier = highest(c.tier for _, c in results)
        out.reasons = _reasons(c for _, c in results if c.tier == out.tier)

    def _with_findings(self, residual: Classification, findings: list[Finding]) -> Classification:
        if not findings:
            return residual
        found = self.classifier.classify(None, path=None, findings=findings)
        return Classification("restricted", (*found.reasons, *residual.reasons))

    @staticmethod
    def _finding(hit: Hit) -> Finding:
        return Finding(None, hit.start, hit.end, 0, 0, 0, 0, hit.category, hit.rule, hit.confidence, "", "")


def _reasons(items: Iterable[Classification]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for classification in items:
        for reason in classification.reasons:
            seen[reason] = None
    return tuple(seen)


def _batches(indexes: list[int], parts: Sequence[Part]) -> list[list[int]]:
    out: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index in indexes:
        length = len(parts[index].text) + len(SEPARATOR)
        if current and size + length > BATCH_LIMIT:
            out.append(current)
            current, size = [], 0
        current.append(index)
        size += length
    if current:
        out.append(current)
    return out
