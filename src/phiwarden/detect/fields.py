"""What a field name (key, column header, XML tag, label) says about the value next to it.

The rules are data (`data/fields.toml`, plus `keys` of custom detectors); this module splits a name
into words and finds the first rule that applies. Results are cached per name: real files repeat the
same few hundred keys.
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from phiwarden.detect.vocabulary import load_data_file

Strength = Literal["strong", "medium", "weak"]
_STRENGTHS: tuple[Strength, ...] = ("strong", "medium", "weak")

# Longer names are prose or data, not a field name.
MAX_FIELD_NAME = 64


@dataclass(frozen=True, slots=True)
class FieldRule:
    category: str
    strength: Strength
    kind: str
    words: tuple[tuple[str, ...], ...]
    veto: tuple[tuple[str, ...], ...]
    ignore_meta: frozenset[str]
    rule_id: str


@dataclass(frozen=True, slots=True)
class FieldClass:
    """The verdict on one field name."""

    category: str
    strength: Strength
    kind: str
    rule_id: str


_SEPARATORS = {ord(ch): " " for ch in "_-.$@:/# \t'\"`[]()"}


def split_words(name: str) -> tuple[str, ...]:
    """`dateOfBirth` -> (date, of, birth); `TEST_PATIENT_DOB` -> (test, patient, dob); `a1` -> (a, 1);
    `Driver's license` -> (driver, license)."""
    if "'" in name or "’" in name:
        name = _without_possessives(name)
    # Most names are snake, kebab or upper case without digits: split them without the loop below.
    if (name.islower() or name.isupper()) and not any(ch.isdigit() for ch in name):
        plain = name.translate(_SEPARATORS)
        if plain.replace(" ", "").isalnum():
            return tuple(plain.lower().split())
    words: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            words.append("".join(current).lower())
            current.clear()

    previous = ""
    for index, ch in enumerate(name):
        if not ch.isalnum():
            flush()
            previous = ""
            continue
        if current:
            nxt = name[index + 1] if index + 1 < len(name) else ""
            boundary = (
                (ch.isupper() and previous.islower())
                or (ch.isupper() and previous.isupper() and nxt.islower())
                or (ch.isdigit() != previous.isdigit())
            )
            if boundary:
                flush()
        current.append(ch)
        previous = ch
    flush()
    return tuple(words)


def _without_possessives(name: str) -> str:
    """`Driver's license` -> `Driver license`: a possessive is no word of a field name."""
    out = []
    index = 0
    while index < len(name):
        ch = name[index]
        after = name[index + 2 : index + 3]
        if ch in "'’" and name[index + 1 : index + 2] in ("s", "S") and not after.isalnum():
            index += 2
            continue
        out.append(ch)
        index += 1
    return "".join(out)


def fold_accents(word: str) -> str:
    """`prénom` -> `prenom`, `teléfono` -> `telefono`: headers are written with and without accents."""
    if word.isascii():
        return word
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch))


def _folded(phrases: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(fold_accents(w) for w in phrase) for phrase in phrases)


def _phrases(entries: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(entry.lower().replace("-", " ").split()) for entry in entries)


def _find(words: Sequence[str], phrase: Sequence[str]) -> int:
    """Index where `phrase` appears contiguously in `words`, or -1."""
    n = len(phrase)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) == tuple(phrase):
            return i
    return -1


_SETTER_VERBS = frozenset({"set", "with"})


class FieldClassifier:
    """Ordered field rules with the global meta and person word lists."""

    def __init__(self, rules: Sequence[FieldRule], meta: Iterable[str], person: Iterable[str]) -> None:
        self.rules = tuple(rules)
        self.meta = frozenset(meta)
        self.person = _phrases(person)
        # Names and rules are compared without accents; `rules` keeps the spellings that the field
        # name patterns look for in the text.
        self._folded_rules = tuple(
            dataclasses.replace(r, words=_folded(r.words), veto=_folded(r.veto)) for r in self.rules
        )
        # Only rules with a phrase starting with one of the name's words can apply: index them.
        self._by_first_word: dict[str, set[int]] = {}
        for number, rule in enumerate(self._folded_rules):
            for phrase in rule.words:
                self._by_first_word.setdefault(phrase[0], set()).add(number)
        self.classify = functools.lru_cache(maxsize=16384)(self._classify)

    def _classify(self, name: str) -> FieldClass | None:
        if not name or len(name) > MAX_FIELD_NAME:
            return None
        words = split_words(name)
        if not name.isascii():
            words = tuple(fold_accents(w) for w in words)
        # A setter names its field: `setFamily("…")`, `withGiven("…")` ("set" alone is a collection).
        if len(words) > 1 and words[0] in _SETTER_VERBS:
            words = words[1:]
        candidates: set[int] = set()
        for word in words:
            candidates |= self._by_first_word.get(word, set())
        for number in sorted(candidates):
            verdict = self._apply(self._folded_rules[number], words)
            if verdict is not None:
                return verdict
        return None

    def _apply(self, rule: FieldRule, words: tuple[str, ...]) -> FieldClass | None:
        present = set(words)
        for phrase in rule.words:
            if phrase[0] not in present:
                continue
            at = _find(words, phrase)
            if at < 0:
                continue
            matched = set(range(at, at + len(phrase)))
            others = [w for i, w in enumerate(words) if i not in matched]
            if any(w in self.meta and w not in rule.ignore_meta for w in others):
                return None
            if any(
                veto[0] in present and _find(words, veto) >= 0 and not set(veto) <= set(phrase)
                for veto in rule.veto
            ):
                return None
            strength = rule.strength
            if strength != "strong" and any(p[0] in others and _find(others, p) >= 0 for p in self.person):
                strength = "strong"
            return FieldClass(rule.category, strength, rule.kind, rule.rule_id)
        return None


# Words too generic to find candidate keys by: every phrase also has a more telling word.
@functools.cache
def _glue() -> frozenset[str]:
    return frozenset(load_data_file("fields.toml")["glue"])


def key_stems(rules: Sequence[FieldRule]) -> tuple[frozenset[str], frozenset[str]]:
    """Words of which a field name must contain one for any rule to apply: (name stems, other stems).

    Name stems are kept apart because the scanner asks more of the value behind them (a capital letter),
    which is what keeps `name = "utf-8"` and `self.first = first` out of the slow path.
    """
    name_stems: set[str] = set()
    other_stems: set[str] = set()
    for rule in rules:
        target = name_stems if rule.category == "name" else other_stems
        for phrase in rule.words:
            telling = [w for w in phrase if w not in _glue() and len(w) > 1]
            target.update(telling or [w for w in phrase if len(w) > 1])
    return frozenset(name_stems - other_stems), frozenset(other_stems)


def key_phrases(rules: Sequence[FieldRule]) -> tuple[frozenset[tuple[str, ...]], frozenset[tuple[str, ...]]]:
    """The phrases a field name must end with for a rule to apply: (name phrases, other phrases)."""
    names: set[tuple[str, ...]] = set()
    others: set[tuple[str, ...]] = set()
    for rule in rules:
        (names if rule.category == "name" else others).update(p for p in rule.words if "".join(p).isalnum())
    return frozenset(names - others), frozenset(others)


def rules_from_data(entries: Sequence[dict[str, object]], *, id_prefix: str) -> list[FieldRule]:
    rules = []
    for index, entry in enumerate(entries):
        strength = str(entry.get("strength", "strong"))
        if strength not in _STRENGTHS:
            raise ValueError(f"field rule {index}: strength must be one of {_STRENGTHS}")
        words = entry.get("words", [])
        veto = entry.get("veto", [])
        ignore_meta = entry.get("ignore_meta", [])
        assert isinstance(words, list) and isinstance(veto, list) and isinstance(ignore_meta, list)
        category = str(entry["category"])
        kind = str(entry.get("kind", ""))
        rules.append(
            FieldRule(
                category=category,
                strength=strength,
                kind=kind,
                words=_phrases(str(w) for w in words),
                veto=_phrases(str(v) for v in veto),
                ignore_meta=frozenset(str(m) for m in ignore_meta),
                rule_id=str(entry.get("id", f"{id_prefix}.{category}{'.' + kind if kind else ''}")),
            )
        )
    return rules


@functools.cache
def builtin_rules() -> tuple[tuple[FieldRule, ...], frozenset[str], tuple[str, ...]]:
    data = load_data_file("fields.toml")
    rules = rules_from_data(data["field"], id_prefix="field")
    return tuple(rules), frozenset(data["meta"]), tuple(data["person"])
