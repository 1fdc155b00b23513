"""The detector registry: detectors are data (a pattern, context words, a validator), not code.

Built-in detectors come from `data/detectors.toml`; a policy adds its own with the same fields. All
pattern detectors are compiled into one RE2 alternation so a text is read once whatever their number.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from phiwarden.detect import secrets, validators, values
from phiwarden.detect.candidate import Candidate
from phiwarden.detect.rx import KeywordSet, Pattern, PatternError, compile_pattern
from phiwarden.detect.validators import Validator
from phiwarden.detect.vocabulary import load_data_file

CATEGORIES = (
    "name", "address", "zip", "date", "phone", "fax", "email", "ssn", "mrn", "health_plan", "account",
    "license", "vehicle", "device", "url", "ip", "biometric", "photo", "other_id", "secret",
)  # fmt: skip
PHI_CATEGORIES = frozenset(CATEGORIES) - {"secret"}


def _birth_date(value: str) -> bool:
    return values.check_date(value, True, "birth") is not None


def _date(value: str) -> bool:
    return values.check_date(value, True, "event") is not None


def _name(value: str) -> bool:
    return values.is_name(value, min_tokens=1)


def _full_name(value: str) -> bool:
    return values.is_name(value, min_tokens=2)


def _file_name_person(value: str) -> bool:
    # Okonkwo_Marisol: a file name spells the spaces of a name with underscores.
    return values.is_name(value.replace("_", " "), min_tokens=2)


def _identifier(value: str) -> bool:
    return values.identifier_shape(value, min_digits=4, min_length=4)


def _stated_identifier(value: str) -> bool:
    # A number a person states about a card in hand (a prompt's "Subscriber ID W123456789"): digits
    # that count up are no documentation example there.
    return values.identifier_shape(value, min_digits=4, min_length=5, counting_up=False)


def _bearer(value: str) -> bool:
    if value.startswith("eyJ"):
        return secrets.jwt(value)
    return secrets.not_example(value) and secrets.high_variety(value)


def _client_ip(value: str) -> bool:
    # Four single digits are section numbers ("sect 6.2.1.1") or versions, not a client's address.
    return validators.public_ip(value) and not all(len(octet) == 1 for octet in value.split("."))


def _not_placeholder(value: str) -> bool:
    return not values.is_placeholder_identifier(value)


def _real_place(value: str) -> bool:
    return not values.is_placeholder_place(value)


def validator_registry() -> dict[str, validators.Validator]:
    """Every validator a detector may name, built-in or custom."""
    return {
        **validators.REGISTRY,
        "jwt": secrets.jwt,
        "not_example": secrets.not_example,
        "high_variety": secrets.high_variety,
        "url_credentials": secrets.url_credentials_are_real,
        "connection_password": secrets.connection_password,
        "bearer_token": _bearer,
        "personal_email": values.is_personal_email,
        "url_identifier": values.url_carries_identifier,
        "birth_date": _birth_date,
        "date": _date,
        "name": _name,
        "full_name": _full_name,
        "file_name_person": _file_name_person,
        "identifier": _identifier,
        "stated_identifier": _stated_identifier,
        "client_ip": _client_ip,
        "not_placeholder": _not_placeholder,
        "udi": values.udi_is_real,
        "real_place": _real_place,
    }


def _name_core(data: bytes, start: int, value: str) -> tuple[int, int, str]:
    """The byte span and text of the name in a matched name `value` that begins at `start`."""
    head, tail = values.name_core(value)
    start += len(value[:head].encode("utf-8", "surrogatepass"))
    core = value[head:tail]
    return start, start + len(core.encode("utf-8", "surrogatepass")), core


class DetectorError(ValueError):
    """A detector definition that cannot be used; `field` names the offending key."""

    def __init__(self, message: str, *, index: int, field: str) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


@dataclass(frozen=True, slots=True)
class Detector:
    id: str
    category: str
    pattern: str
    description: str = ""
    ignore_case: bool = False
    validator_names: tuple[str, ...] = ()
    confidence: float = 0.8
    context: tuple[bytes, ...] = ()
    context_window: int = 48
    confidence_without_context: float | None = None
    placeholders: frozenset[str] = frozenset()
    report: bool = True
    # Field names whose values belong to this detector (custom detectors: "acme_chart_id").
    keys: tuple[str, ...] = ()
    # The detector runs only on texts holding one of these (any case); empty: on every text.
    keywords: tuple[str, ...] = ()
    # Detectors of one stage share a pass over the text.
    stage: str = ""
    source: str = "builtin"
    checks: tuple[Validator, ...] = field(default=(), compare=False, repr=False)

    def accept(self, value: str, whole: str | None = None) -> bool:
        """Whether `value` (the reported span of a match `whole`) passes placeholders and validators."""
        if value.lower() in self.placeholders or (whole is not None and whole.lower() in self.placeholders):
            return False
        return all(check(value) for check in self.checks)

    def score(self, data: bytes, start: int, end: int) -> float | None:
        """Confidence of a match at [start, end), or None when it is not to be reported."""
        if not self.context:
            return self.confidence
        window = data[max(0, start - self.context_window) : end + self.context_window].lower()
        if any(_has_word(window, word) for word in self.context):
            return self.confidence
        return self.confidence_without_context


def _has_word(window: bytes, word: bytes) -> bool:
    """`word` in `window`, not as the inside of a longer word ("pt" is not in "except")."""
    at = window.find(word)
    while at >= 0:
        before = window[at - 1 : at]
        after = window[at + len(word) : at + len(word) + 1]
        if not (word[:1].isalnum() and before.isalnum()) and not (word[-1:].isalnum() and after.isalnum()):
            return True
        at = window.find(word, at + 1)
    return False


_FIELDS = {
    "id", "category", "description", "pattern", "ignore_case", "validator", "confidence", "context",
    "context_window", "confidence_without_context", "placeholders", "report", "keys", "keywords", "stage",
}  # fmt: skip


def expand_macros(pattern: str, macros: Mapping[str, str]) -> str:
    for name, body in macros.items():
        pattern = pattern.replace("%{" + name + "}", "(?:" + body + ")")
    return pattern


def detector_from_data(
    entry: Mapping[str, Any], *, index: int, macros: Mapping[str, str], source: str
) -> Detector:
    """Build and check one detector definition; errors name the field at fault."""

    def fail(message: str, key: str) -> DetectorError:
        return DetectorError(message, index=index, field=key)

    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise fail(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})", unknown[0])
    for key in ("id", "category", "pattern"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise fail(f"{key!r} is required and must be a non-empty string", key)
    category = entry["category"]
    if category not in CATEGORIES:
        raise fail(f"category {category!r} is not one of: {', '.join(CATEGORIES)}", "category")
    pattern = expand_macros(entry["pattern"], macros)
    ignore_case = entry.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise fail("'ignore_case' must be true or false", "ignore_case")
    if source != "builtin":  # built-in patterns are checked by the test suite, not at every start
        try:
            compiled = compile_pattern(pattern, ignore_case=ignore_case)
        except PatternError as exc:
            raise fail(str(exc), "pattern") from None
        if set(compiled.group_index) - {"value"}:
            raise fail("only one named group, 'value', is allowed", "pattern")
    names = entry.get("validator", [])
    names = [names] if isinstance(names, str) else names
    registry = validator_registry()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise fail("'validator' must be a name or a list of names", "validator")
    for name in names:
        if name not in registry:
            raise fail(f"unknown validator {name!r} (known: {', '.join(sorted(registry))})", "validator")
    confidence = _probability(entry.get("confidence", 0.8), "confidence", fail)
    without = entry.get("confidence_without_context")
    if without is not None:
        without = _probability(without, "confidence_without_context", fail)
    context = _strings(entry.get("context", []), "context", fail)
    window = entry.get("context_window", 48)
    if not isinstance(window, int) or not 0 < window <= 1000:
        raise fail("'context_window' must be a whole number of characters from 1 to 1000", "context_window")
    report = entry.get("report", True)
    if not isinstance(report, bool):
        raise fail("'report' must be true or false", "report")
    keywords = _strings(entry.get("keywords", []), "keywords", fail)
    if not keywords and context and without is None:
        # Without one of its context words nearby the detector reports nothing: let them gate it.
        keywords = list(context)
    for keyword in keywords:
        if not keyword.strip("* ") or keyword == "re:":
            raise fail("'keywords' must not hold empty strings", "keywords")
        if source != "builtin":
            try:
                compile_pattern(keyword_pattern(keyword.lower()))
            except PatternError as exc:
                raise fail(f"keyword {keyword!r}: {exc}", "keywords") from None
    return Detector(
        id=entry["id"],
        category=category,
        pattern=pattern,
        description=str(entry.get("description", "")),
        ignore_case=ignore_case,
        validator_names=tuple(names),
        confidence=confidence,
        context=tuple(w.lower().encode() for w in context),
        context_window=window,
        confidence_without_context=without,
        placeholders=frozenset(
            p.lower() for p in _strings(entry.get("placeholders", []), "placeholders", fail)
        ),
        report=report,
        keys=tuple(_strings(entry.get("keys", []), "keys", fail)),
        keywords=tuple(k.lower() for k in keywords),
        stage=str(entry.get("stage", "")) or entry["id"],
        source=source,
        checks=tuple(registry[n] for n in names),
    )


def _probability(value: object, key: str, fail: Callable[[str, str], DetectorError]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise fail(f"{key!r} must be a number from 0 to 1", key)
    return float(value)


def _strings(value: object, key: str, fail: Callable[[str, str], DetectorError]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{key!r} must be a list of strings", key)
    return list(value)


@functools.cache
def builtin_detectors() -> tuple[tuple[Detector, ...], Mapping[str, str]]:
    data = load_data_file("detectors.toml")
    suffixes = values.street_suffixes().split("|")
    cased = "|".join([*(w[0].upper() + w[1:] for w in suffixes), *(w.upper() for w in suffixes)])
    macros = {**data["macros"], "street_suffix": cased, "address_tail": values.ADDRESS_TAIL}
    detectors = tuple(
        detector_from_data(entry, index=i, macros=macros, source="builtin")
        for i, entry in enumerate(data["detector"])
    )
    return detectors, macros


class Stage:
    """Detectors matched together in one pass: one RE2 alternation, compiled once, on first use.

    Most runs activate a few stages (a pre-commit hook on 50 files, a gateway prompt): compiling every
    one at start-up cost more than the scan. A stage holding a policy's own detectors compiles at
    once, so that a pattern RE2 cannot take is reported when the policy loads.
    """

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = tuple(detectors)
        parts = []
        for n, detector in enumerate(self.detectors):
            body = detector.pattern.replace("(?P<value>", f"(?P<d{n}_value>")
            if detector.ignore_case:
                body = f"(?i:{body})"
            parts.append(f"(?P<d{n}>{body})")
        self._source = "|".join(parts)
        self._compiled: tuple[Pattern, list[tuple[int, int, Detector]]] | None = None
        self._rest: dict[int, Stage | None] = {}
        if any(d.source != "builtin" for d in self.detectors):
            self._build()

    @property
    def pattern(self) -> Pattern:
        return self._build()[0]

    @property
    def groups(self) -> list[tuple[int, int, Detector]]:
        """(group of the detector's whole match, group of its value, detector), in listed order."""
        return self._build()[1]

    def _build(self) -> tuple[Pattern, list[tuple[int, int, Detector]]]:
        if self._compiled is None:
            pattern = compile_pattern(self._source)
            index = pattern.group_index
            groups = [
                (index[f"d{n}"], index.get(f"d{n}_value", index[f"d{n}"]), d)
                for n, d in enumerate(self.detectors)
            ]
            self._compiled = (pattern, groups)
        return self._compiled

    def after(self, number: int) -> Stage | None:
        """The detectors listed after detector `number`, as a stage of their own (built on first use).

        An alternation reports only its first branch that matches at a position: when that branch's
        validator rejects the value, the later branches that match at the same position are read
        through this stage instead of being lost.
        """
        if number not in self._rest:
            rest = self.detectors[number + 1 :]
            self._rest[number] = Stage(rest) if rest else None
        return self._rest[number]


def keyword_pattern(word: str) -> str:
    """The RE2 form of a keyword.

    A keyword is a whole word where it begins or ends with a letter or digit ("age" does not fire on
    "page" or "agent"); a trailing `*` makes it a prefix ("akia*" fires on "AKIA…"); `re:` introduces
    a raw pattern.
    """
    if word.startswith("re:"):
        return word[3:]
    prefix = word.endswith("*")
    word = word.rstrip("*")
    escaped = "".join("\\" + ch if not ch.isalnum() and ch != " " else ch for ch in word)
    start = "\\b" if word[0].isalnum() else ""
    end = "\\b" if word[-1].isalnum() and not prefix else ""
    return start + escaped + end


@dataclass(frozen=True, slots=True)
class Activation:
    stages: list[Stage]
    triggers: frozenset[str]


class PatternSet:
    """Pattern detectors grouped in stages; each match is traced back to its detector.

    A first pass (an RE2 set of all keywords) tells which stages can match a text at all; only those
    read the text. Stages keep each automaton small: RE2 is fast on any one of them, but the union of
    all detectors would multiply their states.
    """

    def __init__(self, detectors: Sequence[Detector], triggers: Mapping[str, str] | None = None) -> None:
        self.detectors = tuple(detectors)
        by_stage: dict[str, list[Detector]] = {}
        for detector in self.detectors:
            by_stage.setdefault(detector.stage or detector.id, []).append(detector)
        self.stages = [Stage(members) for members in by_stage.values()]
        self._always = frozenset(
            i for i, stage in enumerate(self.stages) if any(not d.keywords for d in stage.detectors)
        )
        words = sorted({w for d in self.detectors for w in d.keywords})
        self._triggers = [
            frozenset(i for i, st in enumerate(self.stages) if any(w in d.keywords for d in st.detectors))
            for w in words
        ]
        # Extra named patterns checked in the same pass (which structure parsers a text needs).
        self._named = list((triggers or {}).items())
        patterns = [keyword_pattern(w) for w in words] + [pattern for _, pattern in self._named]
        self._keywords = KeywordSet(patterns) if patterns else None
        self._word_count = len(words)

    def active(self, data: bytes) -> Activation:
        """The stages that could match `data` (in their listed order) and the named triggers present."""
        active = set(self._always)
        named: set[str] = set()
        if self._keywords is not None:
            for index in self._keywords.present(data):
                if index < self._word_count:
                    active |= self._triggers[index]
                else:
                    named.add(self._named[index - self._word_count][0])
        return Activation([self.stages[i] for i in sorted(active)], frozenset(named))

    def candidates(self, data: bytes, stages: Sequence[Stage] | None = None) -> Iterator[Candidate]:
        for stage in self.active(data).stages if stages is None else stages:
            yield from self._scan_stage(stage, data)

    def _scan_stage(self, stage: Stage, data: bytes) -> Iterator[Candidate]:
        """Matches of one stage, each position read once plus bounded re-reads.

        After an accepted match the scan resumes where its value ends, so trailing context that a
        pattern needed ("Ana Ruiz (MRN …") is still available to the next detector; after a rejected
        one it resumes one byte further, so a detector listed later can still match there.
        """
        pattern, end_of_text = stage.pattern, len(data)
        pos = 0
        while pos < end_of_text:
            m = pattern.search(data, pos)
            if m is None:
                return
            candidate, number = self._accept(m.spans, stage.groups, data)
            rest = stage.after(number) if candidate is None else None
            while rest is not None:
                later = rest.pattern.match(data, m.start)
                if later is None:
                    break
                candidate, number = self._accept(later.spans, rest.groups, data)
                rest = rest.after(number) if candidate is None else None
            if candidate is None:
                pos = m.start + 1
                continue
            yield candidate
            pos = max(candidate.end, m.start + 1)

    @staticmethod
    def _accept(
        spans: tuple[tuple[int, int], ...], groups: list[tuple[int, int, Detector]], data: bytes
    ) -> tuple[Candidate | None, int]:
        """The candidate of the branch that matched (None when rejected) and that branch's number."""
        for number, (whole, value_group, detector) in enumerate(groups):
            if spans[whole][0] < 0:
                continue
            start, end = spans[value_group]
            if start < 0:
                start, end = spans[whole]
            value = data[start:end].decode("utf-8", "surrogatepass")
            if detector.category == "name":
                start, end, value = _name_core(data, start, value)
            matched = data[spans[whole][0] : spans[whole][1]].decode("utf-8", "surrogatepass")
            if not detector.accept(value, matched):
                return None, number
            confidence = detector.score(data, start, end)
            if confidence is None:
                return None, number
            candidate = Candidate(
                start=start,
                end=end,
                category=detector.category,
                rule=detector.id,
                confidence=confidence,
                anchors_record=detector.category != "secret" and confidence >= 0.75,
                report=detector.report,
            )
            return candidate, number
        return None, len(groups)
