"""Tiers: public, internal or restricted, always with the reasons.

- restricted: PHI values or credentials were found, or the content is PHI-adjacent (patient
  endpoints, schemas of patient/claims/provider tables, code handling DOB/SSN/MRN/diagnosis-code
  fields, access control guarding those, de-identification and log-scrubbing logic), or the policy
  says so. A field name counts where code uses it (`patient.ssn`, `"dob":`, `get_mrn(`) or labels the
  lines of a pasted record, not as a word in a sentence: prose about a patient is restricted by its
  values, and shareable once they are replaced.
- internal: proprietary code without PHI (the default for files of a repository).
- public: generic content (the default for text without a path, such as a question to a model),
  third-party and license files, and paths the policy declares public.

When in doubt, restricted: a path rule can raise a tier, but nothing lowers a tier that findings
or content signals raised.
"""

from __future__ import annotations

import functools
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import pathspec

from phiwarden.detect.finding import Finding
from phiwarden.detect.rx import KeywordSet, literal_alternation
from phiwarden.policy.model import ClassifySettings, Policy

Tier = Literal["public", "internal", "restricted"]
TIERS: tuple[Tier, ...] = ("public", "internal", "restricted")

# Third-party code, generated lock files and licences are not the company's logic.
_PUBLIC_BY_DEFAULT = (
    "LICENSE*", "LICENCE*", "COPYING*", "NOTICE*", "*.lock", "package-lock.json", "yarn.lock",
    "pnpm-lock.yaml", "poetry.lock", "Cargo.lock", "go.sum", "vendor/**", "third_party/**",
    "third-party/**", "node_modules/**", ".venv/**",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Classification:
    tier: Tier
    reasons: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {"tier": self.tier, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class _Signal:
    id: str
    reason: str
    needs: frozenset[str]


class Classifier:
    """Content signals and path rules compiled for one policy."""

    def __init__(self, settings: ClassifySettings) -> None:
        text = (
            resources.files("phiwarden.classify").joinpath("data").joinpath("signals.toml").read_text("utf-8")
        )
        data = tomllib.loads(text)
        tables = literal_alternation(sorted({*data["tables"], *(t.lower() for t in settings.phi_tables)}))
        self._signals: list[_Signal] = []
        patterns = []
        for entry in data["signal"]:
            # A pattern may be a list of alternatives, one form per line, for reading.
            pattern = entry["pattern"] if isinstance(entry["pattern"], str) else "|".join(entry["pattern"])
            for name in ("fields", "identifier_fields", "labels"):
                pattern = pattern.replace(f"%{{{name}}}", data[name])
            pattern = pattern.replace("%{tables}", tables)
            if entry.get("case_sensitive"):
                pattern = f"(?-i:{pattern})"
            patterns.append(pattern)
            self._signals.append(_Signal(entry["id"], entry["reason"], frozenset(entry.get("needs", ()))))
        for symbol in settings.restricted_symbols:
            patterns.append(r"(?-i:\b" + literal_alternation([symbol]) + r"\b)")
            self._signals.append(
                _Signal(f"symbol:{symbol}", f"restricted symbol {symbol!r} (policy)", frozenset())
            )
        self._matcher = KeywordSet(patterns)
        self._restricted = _spec(settings.restricted_paths)
        self._internal = _spec(settings.internal_paths)
        self._public = _spec((*_PUBLIC_BY_DEFAULT, *settings.public_paths))

    def signals(self, data: bytes) -> list[str]:
        """Reasons for the PHI-adjacent content signals present in `data`."""
        present = {self._signals[i].id: self._signals[i] for i in self._matcher.present(data)}
        return [s.reason for s in present.values() if not s.needs or s.needs & present.keys()]

    def classify(
        self, data: bytes | None, *, path: str | None, findings: Sequence[Finding]
    ) -> Classification:
        reasons: list[str] = []
        restricted = False
        phi = Counter(f.category for f in findings if f.category != "secret")
        if phi:
            restricted = True
            reasons.append(
                "PHI found: "
                + ", ".join(f"{n} {c}" for c, n in sorted(phi.items(), key=lambda x: (-x[1], x[0])))
            )
        secrets = sum(1 for f in findings if f.category == "secret")
        if secrets:
            restricted = True
            reasons.append(f"credentials found: {secrets}")
        if data is not None:
            content = self.signals(data)
            restricted = restricted or bool(content)
            reasons += content
        if path is not None and self._restricted is not None and self._restricted.match_file(path):
            restricted = True
            reasons.append("restricted path (policy)")
        if restricted:
            return Classification("restricted", tuple(reasons))
        if path is None:
            return Classification("public", ("no PHI, credentials or PHI-adjacent code",))
        if self._internal is not None and self._internal.match_file(path):
            return Classification("internal", ("internal path (policy)",))
        if self._public is not None and self._public.match_file(path):
            return Classification("public", ("public path",))
        return Classification("internal", ("repository content without PHI or PHI-adjacent code",))


def _spec(globs: Iterable[str]) -> pathspec.GitIgnoreSpec | None:
    globs = list(globs)
    return pathspec.GitIgnoreSpec.from_lines(globs) if globs else None


def classifier_for(policy: Policy) -> Classifier:
    """The classifier for a policy's classify settings, compiled once per process and reused."""
    return _classifier(policy.classify)


@functools.lru_cache(maxsize=8)
def _classifier(settings: ClassifySettings) -> Classifier:
    return Classifier(settings)


def classify_text(
    text: str, *, path: str | None = None, findings: Sequence[Finding] = (), policy: Policy | None = None
) -> Classification:
    """The tier of `text` (a prompt, a snippet, a file's content) with its reasons."""
    classifier = classifier_for(policy if policy is not None else Policy())
    return classifier.classify(text.encode("utf-8", "surrogatepass"), path=path, findings=findings)


def highest(tiers: Iterable[Tier]) -> Tier:
    """The most restrictive of several tiers (a request made of several parts)."""
    return max(tiers, key=TIERS.index, default="public")
