"""Names and dates in prose: the prompts developers write to a model.

"Write a reminder email to Marisol Okonkwo about her appointment" has no field name, table or
record around the name: only the way people introduce one another. A name here is a run of two or
three capitalised words (one after an honorific or a greeting), and the evidence is read around it
(the rules and word lists are in data/prose.toml, given names in data/given_names.toml):

- a strong cue: "patient", "pt", "Dr.", "Mrs." before it; "(DOB", ", 72,", "was admitted", an SSN
  after it;
- a person: a given name at either end ("Marisol Okonkwo", "Okonkwo Marisol"), or a mailbox or
  phone number after it ("Name <…@…>", "Name (617-…)");
- a weak cue: "to", "for", "with", "Dear", "Email", "reminding", "calling" before it, a possessive or
  "her"/"his" after it;
- a file or folder named after it ("/data/notes/Marisol Okonkwo.txt"), with a given name at an end
  (not the account folder under /home or C:\\Users: the developer's own);
- care words around it ("appointment", "refill") raise it; engineering talk about people ("review
  the PR", "paired with") lowers it, and a colleague's role just before it ("our designer …") or a
  word of the stop-list in it (products, places, months) rules it out.

A person with a weak cue is reported; either alone only with care words around it, or inside a
record (an SSN, an MRN, a field value nearby), as weak values are in files.

Prose mode is off for file scans: a repository's capitalised word pairs are class names, headings
and product names far more often than people, and its records are read by their structure.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from phiwarden.detect.candidate import Candidate
from phiwarden.detect.registry import PatternSet, builtin_detectors, detector_from_data
from phiwarden.detect.rx import Pattern, literal_alternation
from phiwarden.detect.values import is_name
from phiwarden.detect.vocabulary import load_data_file

PROSE_NAME = "name.prose"
STRONG = 0.85
GIVEN_WITH_CUE = 0.75
# A given name alone, or a cue alone: reported with care words around it, or inside a record.
LONE_EVIDENCE = 0.5
CARE_RAISE = 0.15
WORK_LOWER = 0.3
# The most words of a run of capitalised words read as a name with its cue words.
_MAX_RUN = 8
# The bytes before a name read for its cue: "patient's name is " fits.
_LOOK_BACK = 40

# A capitalised word of a name: Okonkwo, O'Brien, McAllister, García-López, Min-jun.
# An apostrophe inside a word is followed by two letters or more: "Okonkwo's" is a possessive.
_WORD = r"(?:Mc|Mac|O['’]|D['’])?\p{Lu}[\p{Ll}\p{M}]+(?:-\p{L}[\p{Ll}\p{M}]*|['’]\p{L}[\p{Ll}\p{M}]+)*"
_PARTICLES = "van|von|de|der|den|del|della|da|di|du|la|le|dos|das|do|bin|binti|bint|ibn|al|el|y|ter|ten|zu|af"
# Not inside a longer word, a path, an address or a dotted name.
_LEAD = r"(?:(?m:^)|[^\p{L}\p{M}\p{N}_'’.@/\\-])"
_RUN = Pattern(_LEAD + rf"(?P<run>{_WORD}(?:[ ]+(?:(?:{_PARTICLES})[ ]+){{0,3}}(?:\p{{Lu}}\.[ ]+)?{_WORD})+)")
# A file or folder named after a person: "/data/notes/Marisol Okonkwo.txt", "/images/Okonkwo Marisol/".
_PATH_NAME = Pattern(rf"[/\\](?P<name>{_WORD}(?:[ ]{_WORD}){{1,2}})(?:\.[A-Za-z0-9]{{1,8}}\b|[/\\])")
_FOLDS = str.maketrans({"ı": "i", "ø": "o", "Ø": "o", "æ": "ae", "ß": "ss", "ł": "l", "Ł": "l", "đ": "d"})


@functools.lru_cache(maxsize=65536)
def name_key(word: str) -> str:
    """A word as the lexicons hold it: no case, accents, hyphens or apostrophes (José -> jose)."""
    decomposed = unicodedata.normalize("NFKD", word.translate(_FOLDS).lower())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def _keys(words: Iterable[str]) -> frozenset[str]:
    return frozenset(name_key(w) for w in words)


def _word_pattern(words: Iterable[str]) -> Pattern:
    """Any of `words` (any case) as whole words."""
    return Pattern(r"\b(?i:" + literal_alternation(sorted(set(words))) + r")\b")


@dataclass(frozen=True, slots=True)
class _Cues:
    honorifics: frozenset[str]
    strong: frozenset[str]
    linking: frozenset[str]
    weak: frozenset[str]
    greetings: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    key: str
    start: int  # byte offsets in the text
    end: int

    @property
    def is_word(self) -> bool:
        """A capitalised word, not a particle ("da") or an initial ("R.")."""
        return self.text[:1].isupper() and not self.text.endswith(".")


class ProseScanner:
    """Candidates that only prose mode proposes: names introduced as people introduce them, and
    dates of visits and stays."""

    def __init__(self) -> None:
        data = load_data_file("prose.toml")
        _, macros = builtin_detectors()
        macros = {**macros, **data["macros"]}
        self.patterns = PatternSet(
            [
                detector_from_data(entry, index=i, macros=macros, source="builtin")
                for i, entry in enumerate(data["detector"])
            ]
        )
        cues = data["cues"]
        self.cues = _Cues(*(_keys(cues[k]) for k in ("honorifics", "strong", "linking", "weak", "greetings")))
        self.roles = _keys(cues["roles"])
        self.home_directories = frozenset(cues["home_directories"])
        self._leading = self.cues.honorifics | self.cues.strong | self.cues.weak | self.cues.greetings
        self._after_strong = Pattern(cues["after_strong"])
        self._after_weak = Pattern(cues["after_weak"])
        self._after_contact = Pattern(cues["after_contact"])
        self._pronoun = _word_pattern(cues["pronouns"])
        self._pronoun_reach = int(cues["pronoun_reach"])
        lexicon = load_data_file("given_names.toml")
        self.ambiguous = _keys(lexicon["ambiguous"])
        self.given = _keys(name for names in lexicon["given"].values() for name in names) | self.ambiguous
        self.never = _keys(data["names"]["never"])
        context = data["context"]
        self.window = int(context["window"])
        self._care = _word_pattern(context["care"])
        self._work = _word_pattern(context["work"])
        honorifics = sorted(
            {w.capitalize() for w in cues["honorifics"]} | {w.upper() for w in cues["honorifics"]}
        )
        # One surname after an honorific ("Dear Dr. Chen"), one given name after a greeting ("Hi Marisol,").
        self._titled = Pattern(
            r"\b(?:"
            + literal_alternation(honorifics)
            + rf")\.?[ ]+(?P<name>{_WORD})(?:[^\p{{L}}\p{{M}}\p{{N}}_]|$)"
        )
        self._greeted = Pattern(
            r"\b(?i:"
            + literal_alternation(sorted(cues["greetings"]))
            + rf")[ ]+(?P<name>{_WORD})[ ]*[,!:\r\n]"
        )

    def candidates(self, data: bytes) -> list[Candidate]:
        out = list(self.patterns.candidates(data))
        out += self._runs(data)
        out += self._single(data, self._titled, greeted=False)
        out += self._single(data, self._greeted, greeted=True)
        out += self._path_names(data)
        return out

    def _path_names(self, data: bytes) -> list[Candidate]:
        """A name as a file's or a folder's, with a given name at either end; not the account
        folder under /home or C:\\Users (the developer's own)."""
        if b"/" not in data and b"\\" not in data:
            return []
        out = []
        group = _PATH_NAME.group_index["name"]
        for m in _PATH_NAME.finditer(data):
            start, end = m.group_span(group)
            parent = data[max(0, start - 1 - _LOOK_BACK) : start - 1].replace(b"\\", b"/")
            if parent.rpartition(b"/")[2].decode("utf-8", "ignore").lower() in self.home_directories:
                continue
            tokens = _tokens(data, start, end)
            ends = (tokens[0].key, tokens[-1].key)
            if any(t.key in self.never for t in tokens) or not any(k in self.given for k in ends):
                continue
            if _name_shaped(data[start:end].decode("utf-8", "surrogatepass")):
                out.append(
                    _candidate(start, end, PROSE_NAME, self._in_context(data, start, end, GIVEN_WITH_CUE))
                )
        return out

    # --- runs of capitalised words ----------------------------------------------------------------

    def _runs(self, data: bytes) -> list[Candidate]:
        out = []
        group = _RUN.group_index["run"]
        for m in _RUN.finditer(data):
            start, end = m.group_span(group)
            # A longer run of capitalised words is a heading or a list of products ("Dear Dr Ana
            # de la Cruz" has seven words).
            if data.count(b" ", start, end) >= _MAX_RUN:
                continue
            candidate = self._judge_run(data, _tokens(data, start, end))
            if candidate is not None:
                out.append(candidate)
        return out

    def _judge_run(self, data: bytes, tokens: list[_Token]) -> Candidate | None:
        if not tokens:
            return None
        # A camel-cased or digit-glued last word ("Visual StudioCode", "Okonkwo2") is an identifier.
        tail = data[tokens[-1].end : tokens[-1].end + 1]
        if tail.isalnum() or tail == b"_":
            return None
        cue = self._cue_before(data, tokens[0].start)
        # Leading cue words and sentence openers belong to the sentence: "Dear Dr Marisol Okonkwo",
        # "Email Marisol Okonkwo", "Patient Tobias Lindqvist".
        while len(tokens) > 1 and (tokens[0].key in self._leading or tokens[0].key in self.never):
            # "Ping Xu": a cue word that is also a given name stays when the name needs it.
            if len([t for t in tokens if t.is_word]) <= 2 and tokens[0].key in self.given:
                break
            cue = _stronger(cue, self._cue_of(tokens[0].key))
            tokens = tokens[1:]
        while len(tokens) > 1 and tokens[-1].key in self.never:
            tokens = tokens[:-1]
        words = [t for t in tokens if t.is_word]
        # "Ping Ngozi Adeyemi": a word before a given name that is no given name itself (or only
        # perhaps one) opens the sentence.
        if len(words) == 3 and self._surely_given(words[1].key) and not self._surely_given(words[0].key):
            tokens = tokens[tokens.index(words[1]) :]
            words = words[1:]
        if not tokens[0].is_word or not tokens[-1].is_word:
            return None
        if not (2 <= len(words) <= 3 or (len(words) == 1 and cue == "honorific")):
            return None
        if any(t.key in self.never for t in words):
            return None
        start, end = tokens[0].start, tokens[-1].end
        confidence = self._confidence(data, start, end, cue, (words[0].key, words[-1].key))
        if confidence is None or not _name_shaped(data[start:end].decode("utf-8", "surrogatepass")):
            return None
        return _candidate(start, end, PROSE_NAME, confidence)

    def _confidence(self, data: bytes, start: int, end: int, cue: str, ends: tuple[str, ...]) -> float | None:
        if cue in ("honorific", "strong") or self._after_strong.match(data, end) is not None:
            return STRONG
        if cue == "role":
            return None
        weak = (
            cue == "weak" or self._after_weak.match(data, end) is not None or self._pronoun_after(data, end)
        )
        person = self._after_contact.match(data, end) is not None or any(
            k in self.given and (weak or k not in self.ambiguous) for k in ends
        )
        if not (person or weak):
            return None
        return self._in_context(data, start, end, GIVEN_WITH_CUE if person and weak else LONE_EVIDENCE)

    def _pronoun_after(self, data: bytes, end: int) -> bool:
        """Whether "she", "her", "his"… follows soon, on the same line."""
        rest = data[end : end + self._pronoun_reach]
        cut = rest.find(b"\n")
        return self._pronoun.search(rest[:cut] if cut >= 0 else rest) is not None

    def _in_context(self, data: bytes, start: int, end: int, confidence: float) -> float:
        """`confidence` raised by care words around [start, end), or lowered by talk about
        engineering work without them."""
        low, high = max(0, start - self.window), min(len(data), end + self.window)
        if self._care.search(data, low, high) is not None:
            return min(STRONG, confidence + CARE_RAISE)
        if self._work.search(data, low, high) is not None:
            return confidence - WORK_LOWER
        return confidence

    def _surely_given(self, key: str) -> bool:
        return key in self.given and key not in self.ambiguous

    # --- one word after an honorific or a greeting -------------------------------------------------

    def _single(self, data: bytes, pattern: Pattern, *, greeted: bool) -> list[Candidate]:
        """A surname after an honorific is a person's; a given name after a greeting is a
        patient's only with care words around it ("Hi Marisol, your lab results are ready")."""
        out = []
        group = pattern.group_index["name"]
        for m in pattern.finditer(data):
            start, end = m.group_span(group)
            text = data[start:end].decode("utf-8", "surrogatepass")
            key = name_key(text)
            if key in self.never or key in self.roles:
                continue
            if _name_shaped(text, allow_common=True):
                confidence = self._in_context(data, start, end, LONE_EVIDENCE) if greeted else STRONG
                out.append(_candidate(start, end, PROSE_NAME, confidence))
        return out

    # --- cues ---------------------------------------------------------------------------------------

    def _cue_before(self, data: bytes, start: int) -> str:
        """The cue that the words just before `start` give: honorific, strong, weak, a colleague's
        role, or ""."""
        before = data[max(0, start - _LOOK_BACK) : start].decode("utf-8", "ignore")
        words = [name_key(w.rstrip(".:,;")) for w in before.replace("\n", " ").split(" ")[-4:] if w]
        if not words or not before.endswith((" ", "\t", "\n", "(", '"', "'", "`", "*", "_")):
            return ""
        if words[-1] in self.roles:
            return "role"
        cue = self._cue_of(words[-1])
        # "patient named …", "pt is …", "the patient's name is …".
        if cue in ("", "weak") and words[-1] in self.cues.linking:
            for word in reversed(words[:-1]):
                if word.removesuffix("s") in self.cues.strong or word in self.cues.strong:
                    return "strong"
                if word not in self.cues.linking:
                    break
        return cue

    def _cue_of(self, key: str) -> str:
        if key in self.cues.honorifics:
            return "honorific"
        if key in self.cues.strong:
            return "strong"
        if key in self.cues.weak or key in self.cues.greetings:
            return "weak"
        return ""


_RANK = {"": 0, "role": 0, "weak": 1, "strong": 2, "honorific": 3}


def _stronger(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


# Names recur in a text (and hostile input repeats one): the shape check is pure, so remember it.
@functools.lru_cache(maxsize=4096)
def _name_shaped(text: str, *, allow_common: bool = False) -> bool:
    return is_name(text, min_tokens=1, allow_common=allow_common)


def _tokens(data: bytes, start: int, end: int) -> list[_Token]:
    out = []
    pos = start
    for part in data[start:end].split(b" "):
        if part:
            text = part.decode("utf-8", "surrogatepass")
            out.append(_Token(text, name_key(text), pos, pos + len(part)))
        pos += len(part) + 1
    return out


def _candidate(start: int, end: int, rule: str, confidence: float) -> Candidate:
    return Candidate(
        start=start,
        end=end,
        category="name",
        rule=rule,
        confidence=round(confidence, 2),
        # A name the cues vouch for makes the dates and mailboxes beside it a record's.
        anchors_record=confidence >= GIVEN_WITH_CUE,
    )


@functools.cache
def prose_scanner() -> ProseScanner:
    """The prose rules, built once per process on first use (file scans never pay for them)."""
    return ProseScanner()
