"""What a value of each PHI category looks like.

A field name says what a value should be; these checks say whether the value found there really is
one: `dob: "1990-02-30"` is not a date, `first_name: factory.Faker("first_name")` is not a name and
`ssn: "000-00-0000"` is a placeholder. Each check takes the text after the separator (a quoted
string's content, or the rest of the line for unquoted values) and returns the span of the value in
it, or None.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from phiwarden.detect import validators
from phiwarden.detect.rx import ShortTextPattern
from phiwarden.detect.vocabulary import load_data_file, name_key, placeholders


@dataclass(frozen=True, slots=True)
class ValueSpan:
    start: int
    end: int
    # 1.0 for a value of textbook shape; lower when the shape is plausible but loose.
    quality: float = 1.0
    # True when the value alone says little ("Min" under `fname`): reported only inside a record.
    weak: bool = False


ValueCheck = Callable[[str, bool, str], "ValueSpan | None"]

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9,
    "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_CALENDAR_WORDS = frozenset(_MONTHS) | {
    "mon", "monday", "tue", "tues", "tuesday", "wed", "wednesday", "thu", "thur", "thurs", "thursday",
    "fri", "friday", "sat", "saturday", "sun", "sunday",
}  # fmt: skip
_TIME = (
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:\s?[AaPp]\.?[Mm]\.?)?"
    r"(?:\s?Z|\s?[+-]\d{2}:?\d{2}|\s?UTC)?)?"
)

# One pattern per family of date spellings, each with y/m/d groups of its own.
DATE_PATTERN = ShortTextPattern(
    r"(?P<iso>(?P<y1>\d{4})-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})" + _TIME + ")"
    r"|(?P<ymd>(?P<y2>\d{4})/(?P<m2>\d{1,2})/(?P<d2>\d{1,2})" + _TIME + ")"
    r"|(?P<us>(?P<m3>\d{1,2})([/-])(?P<d3>\d{1,2})[/-](?P<y3>\d{4}|\d{2})" + _TIME + ")"
    r"|(?P<dot>(?P<d4>\d{1,2})\.(?P<m4>\d{1,2})\.(?P<y4>\d{4})" + _TIME + ")"
    r"|(?P<compact>(?P<y5>(?:18|19|20)\d{2})(?P<m5>0[1-9]|1[0-2])(?P<d5>0[1-9]|[12]\d|3[01])(?:\d{2}(?:\d{2}(?:\d{2})?)?)?(?:[.]\d{1,4})?(?:[+-]\d{4})?)"
    # "Wed Mar 14 1979" (JavaScript's Date.toString), "Wednesday, March 14, 1979".
    r"|(?P<mdy>(?:(?i:(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?)\.?,?\s+)?(?i:(?P<mn6>"
    + _MONTH_NAMES
    + r"))\.?\s+(?P<d6>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y6>\d{4})"
    + _TIME
    + ")"
    r"|(?P<dmy>(?P<d7>\d{1,2})(?:st|nd|rd|th)?[\s-]+(?i:(?P<mn7>"
    + _MONTH_NAMES
    + r"))\.?,?[\s-]+(?P<y7>\d{4}|\d{2})"
    + _TIME
    + ")"
    # Constructors: Java/Kotlin `LocalDate.of`, C# `new DateTime`, Go `time.Date`, Rust chrono's
    # `NaiveDate::from_ymd_opt` and the time crate's `Date::from_calendar_date(…, Month::June, …)`,
    # MATLAB's `datenum(1958, 6, 21)`.
    r"|(?P<ctor>(?:new\s+)?(?:[A-Za-z_][\w.]*(?:\.|::))?(?:of|date|datetime|datenum|DateTime|DateOnly|Date|new|LocalDate|LocalDateTime|Date\.new|Time\.new|DateTime\.new|datetime\.date|datetime\.datetime|parse|Parse|fromisoformat|from_ymd|from_ymd_opt|from_calendar_date)\s*[(]\s*"
    r"(?P<y9>\d{4})\s*,\s*(?:time\.|Month::)?(?P<m9>\d{1,2}|[A-Z][a-z]+)\s*,\s*(?P<d9>\d{1,2})[^)\r\n]{0,40}[)])"
    r"|(?P<newdate>new\s+Date\s*[(]\s*(?P<y10>\d{4})\s*,\s*(?P<m10>\d{1,2})\s*,\s*(?P<d10>\d{1,2})[^)\r\n]{0,40}[)])"
)
_WORD_AFTER = ShortTextPattern(r"[\w/-]")


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 1900 if year > dt.date.today().year % 100 else 2000
    return year


_DATE_FIELDS = (
    ("y1", "m1", "d1"), ("y2", "m2", "d2"), ("y3", "m3", "d3"), ("y4", "m4", "d4"),
    ("y5", "m5", "d5"), ("y6", "mn6", "d6"), ("y7", "mn7", "d7"), ("y9", "m9", "d9"),
    ("y10", "m10", "d10"),
)  # fmt: skip


def parse_date(text: str, pos: int = 0) -> tuple[int, int, dt.date] | None:
    """A calendar date at `pos`: (start, end, date), or None."""
    m = DATE_PATTERN.match(text, pos)
    if m is None:
        return None
    for y, mo, d in _DATE_FIELDS:
        year_text = m.group(y)
        if year_text is None:
            continue
        month_text = m.text(mo)
        month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text.lower(), 0)
        if y == "y10":
            month += 1  # JavaScript months count from zero
        year, day = _year(year_text), int(m.text(d) or "0")
        if y == "y3" and month > 12 >= day:
            month, day = day, month  # day first, as most of the world writes it: 28/03/1974
        if not (validators.calendar_date(year, month, day) and validators.plausible_year(year)):
            return None
        start, end = m.span()
        # "2023-01-05" inside "2023-01-05-build" or "1.2.2024.5" is part of something else.
        if end < len(text) and m.group("ctor") is None and _WORD_AFTER.match(text, end):
            after = text[end]
            if after.isalnum() or (after in "/-" and end + 1 < len(text) and text[end + 1].isdigit()):
                return None
        return start, end, dt.date(year, month, day)
    return None


def is_placeholder_date(value: dt.date) -> bool:
    return value.isoformat() in placeholders().date_values


def check_date(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    start = len(raw) - len(raw.lstrip())
    parsed = parse_date(raw, start)
    if parsed is None:
        return None
    begin, end, value = parsed
    if quoted and raw[end:].strip():
        return None
    if is_placeholder_date(value):
        return None
    today = dt.date.today()
    if kind == "birth" and value > today:
        return None
    if kind in ("birth", "death") and value.year < 1880:
        return None
    return ValueSpan(begin, end)


# --- names -----------------------------------------------------------------------------------------


@functools.cache
def _word_lists() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    data = load_data_file("words.toml")
    never = frozenset(data["never"]) | {t.lower() for t in data["resource_types"]}
    return never, frozenset(data["common"]), frozenset(data["particles"])


@functools.cache
def _words(name: str) -> frozenset[str]:
    """One word list of words.toml (function_words, label_words, identifier_labels, …)."""
    return frozenset(load_data_file("words.toml")[name])


def name_core(value: str) -> tuple[int, int]:
    """(start, end) of the name inside `value`, without the words of the record around it.

    'Pt Rosalind Okafor SSN' -> 'Rosalind Okafor': a leading context word ('Pt', 'Patient') and the
    capitalised label of the record's next field are not parts of the name.
    """
    words = value.split(" ")
    start, end = 0, len(words)
    while end - start > 1 and (
        words[start].rstrip(".:,").lower() in _words("record_context_words")
        or (words[start].isupper() and words[start].rstrip(":").lower() in _words("identifier_labels"))
    ):
        start += 1
    while (
        end - start > 1
        and words[end - 1].isupper()
        and words[end - 1].rstrip(":").lower() in _words("identifier_labels")
    ):
        end -= 1
    head = sum(len(w) + 1 for w in words[:start])
    return head, head + len(" ".join(words[start:end]))


def _is_name_token(token: str) -> bool:
    core = token.strip(".'’-\\")
    if not core:
        return False
    if core.lower() in name_particles():
        return True
    letters = [ch for ch in core if ch.isalpha()]
    if len(letters) < 1 or any(not (ch.isalpha() or ch in "'’-.\\" or _is_mark(ch)) for ch in core):
        return False
    first = core[0]
    # Scripts without case (Arabic, Chinese, Devanagari...) cannot be checked for capitals.
    return first.isupper() or (first.isalpha() and not first.islower() and not first.isupper())


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def name_tokens(value: str) -> list[str]:
    return value.replace("^", " ").replace(",", " ").split()


# Capitalised word parts that real names have after a prefix: McDonald, DeShawn, O'Brien, LaToya.
_NAME_PREFIXES = (
    "Mc",
    "Mac",
    "O'",
    "O’",
    "D'",
    "D’",
    "Di",
    "De",
    "Da",
    "Du",
    "La",
    "Le",
    "Van",
    "Von",
    "St",
    "Fitz",
    "Ben",
    "Al",
    "El",
)


def name_particles() -> frozenset[str]:
    """Lowercase words inside names: "da" in "Ana da Cruz", "van der" in "Piet van der Berg"."""
    return _word_lists()[2]


def _camel_identifier(token: str) -> bool:
    """`PatientCard` is an identifier; `McDonald` and `Al-Farsi` are names."""
    for part in token.replace("'", "-").replace("’", "-").split("-"):
        if part.isupper() or not part:
            continue
        inner = [i for i, ch in enumerate(part) if i and ch.isupper() and part[i - 1].islower()]
        if inner and not part.startswith(_NAME_PREFIXES):
            return True
    return False


def is_name(value: str, *, min_tokens: int = 1, allow_common: bool = False) -> bool:
    """A personal name: capitalised words (any script), particles allowed, no placeholder or UI words.

    `allow_common` accepts ordinary words ("West", "Min", "Long") for fields that can only hold a name
    part, where a surname that is also a word is still a surname.
    """
    text = value.strip()
    # One ideograph is a whole given name or surname in Chinese (宇, 袁).
    shortest = 1 if text and unicodedata.category(text[0]) == "Lo" else 2
    if not shortest <= len(text) <= 80 or any(
        ch.isdigit() or ch in '@/_=<>{}()[]|:;#$%*+!?"\t\n' for ch in text
    ):
        return False
    tokens = name_tokens(text)
    if not min_tokens <= len(tokens) <= 10 or not all(_is_name_token(t) for t in tokens):
        return False
    lowered = [t.strip(".'’-\\").lower() for t in tokens]
    # Particles do not count toward the length: "Mushrif bin Saad bin Layth bin Bakr".
    if sum(t not in name_particles() for t in lowered) > 6:
        return False
    if all(t in name_particles() for t in lowered):
        return False
    never, common, _ = _word_lists()
    data = placeholders()
    if any(t in never or t in data.name_words for t in lowered):
        return False
    # A masked value: one letter over and over (XXXXXXXXXX, ***).
    if any(len(t) >= 3 and len(set(t)) == 1 for t in lowered):
        return False
    if any(t in _words("label_words") for t in lowered):
        return False
    # "DOB", "SSN MRN": the labels of a record's fields (a column list), not a person; "Wed Mar" is
    # the start of a date ("May", "June" and "April" alone are given names, so one word is not).
    if all(t in _words("identifier_labels") for t in lowered) or (
        len(lowered) > 1 and all(t.rstrip(".,") in _CALENDAR_WORDS for t in lowered)
    ):
        return False
    # "OF DOUBLE VERTICAL", "Relationship And Terms": English glue words do not occur inside names.
    if len(lowered) > 1 and any(t in _words("function_words") for t in lowered):
        return False
    if name_key(text) in data.full_names:
        return False
    if not allow_common and all(
        t in common or t in name_particles() or (len(t) <= 1 and unicodedata.category(t[:1] or "x") != "Lo")
        for t in lowered
    ):
        return False
    if any(_camel_identifier(t.strip(".'’-\\")) for t in tokens):
        return False
    return any(len(t) >= 2 or unicodedata.category(t[0]) == "Lo" for t in lowered if t)


_NAME_RUN = ShortTextPattern(r"\s*(?P<name>[\pL\pM'’.\\-]+(?:(?:[ ]|,[ ]?|\^)[\pL\pM'’.\\-]+){0,5})")
# In unquoted text a name ends where the next field starts: "Min, lname=Ren", "Joao Costa, dob=...",
# or a sentence that opens with a label: "Wei Zhang. Date of birth: …".
# logfmt puts the next pair a space away: "patient.name=Ana Ruiz patient.dob=…".
_NEXT_FIELD = ShortTextPattern(
    r",\s*[\w.-]+\s*[=:]|[ \t]+[\w.-]+=|\.[ \t]+(?:\pL[\pL'’-]*[ \t]+){0,3}\pL[\pL'’-]*[ \t]*:"
)

_FORM_ENCODED_NAME = ShortTextPattern(r"\s*(?P<name>[\pL\pM'’.-]+(?:\+[\pL\pM'’.-]+){1,4})(?:[&#\s]|$)")


def _without_number_suffixes(value: str) -> str:
    """`Abe604 Bergnaum523` -> `Abe Bergnaum`: Synthea, the most used generator of synthetic patients,
    numbers every name it makes; a field of such names is still a field of names."""
    words = value.split(" ")
    stripped = [w.rstrip("0123456789") for w in words]
    if all(
        len(w) - len(s) <= 3 and (s == w or (len(s) >= 2 and s.isalpha()))
        for w, s in zip(words, stripped, strict=True)
    ):
        return " ".join(stripped)
    return value


def check_name(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    text = raw
    if not quoted:
        # A query string spells spaces as '+': `?patient_name=Ana+Ruiz&dob=…` (same length, same offsets).
        encoded = _FORM_ENCODED_NAME.match(text)
        if encoded is not None:
            text = text[: encoded.end("name")].replace("+", " ") + text[encoded.end("name") :]
        cut = _NEXT_FIELD.search(text)
        if cut is not None:
            text = text[: cut.start()]
        m = _NAME_RUN.match(text)
        if m is None:
            return None
        start, end = m.span("name")
        rest = text[end:].strip()
        # An unquoted name followed by code ("Faker(", ".name", "+ suffix") is an expression.
        if rest and rest[0] not in ",;#)}]&|" and not rest.startswith(("//", "--", "<")):
            return None
        value = text[start:end].rstrip(",. ")
        end = start + len(value)
        # A bare ALL-CAPS word in code is a constant.
        if value.isupper() and " " not in value and len(value) <= 3:
            return None
    else:
        value = text.strip()
        start = text.find(value)
        end = start + len(value)
    if not is_name(
        _without_number_suffixes(value) if quoted else value, allow_common=kind in ("part", "hl7")
    ):
        return None
    single = len(name_tokens(value)) == 1
    return ValueSpan(start, end, 1.0, weak=single and kind != "hl7")


# --- numbers and identifiers ---------------------------------------------------------------------

_SSN = ShortTextPattern(r"\s*(?P<v>\d{3}([-. ]?)\d{2}([-. ]?)\d{4})")
_PHONE = ShortTextPattern(
    r"\s*(?i:tel:|phone:|cell:|mobile:)?\s*(?P<v>(?:\+?1[-. ]?)?(?:\(\d{3}\)\s?|\d{3}[-. ]?)\d{3}[-. ]?\d{4}"
    r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,5})?"
    r"|\+\d{1,3}[-. ]?(?:\(?\d{1,4}\)?[-. ]?){1,5}\d{2,4}"
    # Without a country code, as written inside its own country: (11) 98765-4321, 06 12 34 56 78.
    r"|(?:\(\d{2,5}\)[ ]?|\d{2,5}[-. ])(?:\d{2,6}[-. ]){0,3}\d{2,6})"
)
_EMAIL = ShortTextPattern(
    r"\s*(?:mailto:)?(?P<v>[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24})"
)
_ZIP = ShortTextPattern(r"\s*(?P<v>\d{5}(?:-\d{4})?)")
_IPV4 = ShortTextPattern(r"\s*(?P<v>\d{1,3}(?:\.\d{1,3}){3})")
_IPV6 = ShortTextPattern(r"\s*\[?(?P<v>[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?)")
_IDENTIFIER = ShortTextPattern(
    r"\s*(?P<v>\d{3,6}(?: \d{3,6}){1,3}\b|[A-Za-z0-9](?:[A-Za-z0-9]|[-_./#:](?:[A-Za-z0-9])){2,39})"
)
_UUID = ShortTextPattern(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
_HEX = ShortTextPattern(r"(?i)(?:0x)?[0-9a-f]+")
# UUID-shaped groups of any letters: generated keys, not numbers issued to a person.
_UUID_SHAPED = ShortTextPattern(r"(?i:[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12})")


def _random_token(value: str) -> bool:
    """`PbfR73F8oh5MMfr9uRtFDB`: a long token whose letters flip case again and again (base62/64)."""
    if len(value) < 16:
        return False
    letters = [ch.isupper() for ch in value if ch.isalpha()]
    return sum(a != b for a, b in itertools.pairwise(letters)) >= 4


_ENDS_TOKEN = frozenset(" \t,;&|\"')]}>")


def _token_end(raw: str, end: int) -> bool:
    if end == len(raw) or raw[end] in _ENDS_TOKEN or raw[end : end + 2] in ("\\n", "\\r", "\\t", '\\"'):
        return True
    # A full stop that ends a sentence: "member id 81792854C."
    return raw[end] == "." and (end + 1 == len(raw) or raw[end + 1].isspace())


def _whole(raw: str, quoted: bool, start: int, end: int) -> bool:
    """A quoted value must be only this; an unquoted one must end at a delimiter."""
    if quoted:
        return not raw[:start].strip() and not raw[end:].strip()
    return _token_end(raw, end)


def check_ssn(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _SSN.match(raw)
    if m is None or not _whole(raw, quoted, *m.span("v")):
        return None
    if m.group(2) != m.group(3):  # mixed separators: "123-45 6789"
        return None
    return ValueSpan(*m.span("v")) if validators.ssn(m.text("v")) else None


def check_phone(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _PHONE.match(raw)
    if m is None or not _whole(raw, quoted, *m.span("v")):
        return None
    value = m.text("v")
    if validators.toll_free(value) or not validators.phone(value, national=True):
        return None
    return ValueSpan(*m.span("v"))


def check_email(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _EMAIL.match(raw)
    if m is None or not _whole(raw, quoted, *m.span("v")):
        return None
    return ValueSpan(*m.span("v")) if is_personal_email(m.text("v")) else None


def is_personal_email(address: str) -> bool:
    local, _, domain = address.lower().rpartition("@")
    if len(local) > 64:  # RFC 5321's limit
        return False
    data = placeholders()
    if domain in data.email_domains or domain.rsplit(".", 1)[-1] in data.email_top_level_domains:
        return False
    if any(domain.endswith("." + d) for d in data.email_domains):
        return False
    if domain in data.email_machine_domains or any(
        domain.endswith("." + d) for d in data.email_machine_domains
    ):
        return False
    if any(label in data.email_domain_words for label in domain.split(".")):
        return False
    base = local.split("+", 1)[0]
    return base not in data.email_role_local_parts and not base.startswith(
        ("noreply", "no-reply", "donotreply")
    )


def check_zip(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _ZIP.match(raw)
    if m is None or not _whole(raw, quoted, *m.span("v")):
        return None
    return ValueSpan(*m.span("v")) if validators.zip_code(m.text("v")) else None


def check_ip(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    for pattern in (_IPV4, _IPV6):
        m = pattern.match(raw)
        if m is not None and validators.public_ip(m.text("v")):
            end = m.end("v")
            if raw[end : end + 1] == ":" and raw[end + 1 : end + 2].isdigit():  # ip:port
                return ValueSpan(*m.span("v"))
            if _whole(raw, quoted, m.start("v"), end):
                return ValueSpan(*m.span("v"))
    return None


def is_placeholder_identifier(value: str, *, counting_up: bool = True) -> bool:
    """A stand-in identifier: a documented example, one digit over and over, a stand-in word, or
    (unless `counting_up` is False) digits that count up as documentation's do."""
    data = placeholders()
    if value.lower() in data.example_identifiers:
        return True
    digits = validators.digits_of(value)
    if len(digits) >= 4 and len(set(digits)) == 1:
        return True
    # Documentation counts up: "123456789012", "policy-0123456789abcdef0", "171234567890123".
    if counting_up and (
        digits in ("1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890")
        or any(_ASCENDING[i : i + 8] in digits for i in range(10))
    ):
        return True
    lowered = value.lower()
    tokens = "".join(ch if ch.isalnum() else " " for ch in lowered).split()
    if {t for t in tokens if t.isalpha()} & data.identifier_words:
        return True
    # A stand-in word glued to digits: "EXAMPLE11111", "TEST0042" (short runs like "NA" are real prefixes).
    letters = "".join(ch if ch.isalpha() else " " for ch in lowered).split()
    if {run for run in letters if len(run) >= 4} & data.identifier_words:
        return True
    return "xxx" in lowered or ("000000" in digits and len(set(digits)) <= 2)


_ASCENDING = "01234567890123456789"


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return not value.isdigit()


def identifier_shape(
    value: str, *, min_digits: int = 4, min_length: int = 5, counting_up: bool = True
) -> bool:
    if not min_length <= len(value) <= 40 or _is_number(value):
        return False
    digits = sum(ch.isdigit() for ch in value)
    if digits < min_digits:
        return False
    if _UUID.fullmatch(value) is not None or _UUID_SHAPED.fullmatch(value) is not None:
        return False
    if _random_token(value):
        return False
    # Long bare hex strings are hashes and commit ids, not record numbers.
    if len(value) >= 16 and _HEX.fullmatch(value) is not None and any(ch.isalpha() for ch in value):
        return False
    return not is_placeholder_identifier(value, counting_up=counting_up)


def _check_identifier(min_digits: int, min_length: int) -> ValueCheck:
    def check(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
        m = _IDENTIFIER.match(raw)
        if m is None or not _whole(raw, quoted, *m.span("v")):
            return None
        value = m.text("v")
        if parse_date(value) is not None and len(value) <= 10:
            return None
        return (
            ValueSpan(*m.span("v"))
            if identifier_shape(value, min_digits=min_digits, min_length=min_length)
            else None
        )

    return check


check_mrn = _check_identifier(min_digits=4, min_length=4)
check_health_plan = _check_identifier(min_digits=4, min_length=5)
check_account = _check_identifier(min_digits=4, min_length=5)
check_license = _check_identifier(min_digits=3, min_length=5)
check_other_id = _check_identifier(min_digits=3, min_length=5)
_check_device_serial = _check_identifier(min_digits=2, min_length=5)

_UDI = ShortTextPattern(
    r"\s*(?P<v>\(01\)\d{14}(?:\(\d{2,4}\)[^()\s\"']{1,20}){0,6}|\+[A-Z]\d{3}[A-Z0-9]{1,18}(?:/[A-Z0-9$+%]{1,30})?|01\d{14}(?:1[01]\d{6}|17\d{6}|10[A-Z0-9]{1,20}|21[A-Z0-9]{1,20}){1,4})"
)


def udi_is_real(value: str) -> bool:
    """A UDI whose device identifier is not all zeros and whose parts are not LOT/SERIAL stand-ins."""
    gtin = value[4:18] if value.startswith("(01)") else value[2:16]
    return not (gtin.isdigit() and len(set(gtin)) == 1) and not is_placeholder_identifier(value)


def check_device(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _UDI.match(raw)
    if m is not None:
        return ValueSpan(*m.span("v")) if udi_is_real(m.text("v")) else None
    # A CGM transmitter id ("8HBMYS") or a pump serial in capitals may hold a single digit.
    stripped = raw.strip()
    if (quoted or stripped == raw) and _capital_serial(stripped) and not is_placeholder_identifier(stripped):
        start = raw.find(stripped)
        return ValueSpan(start, start + len(stripped))
    # "SN 4471-9920-AX", "S/N: 88A1-…": the serial's own label before it.
    label = _SERIAL_LABEL.match(raw)
    if label is not None:
        span = _check_device_serial(raw[label.end() :], quoted, kind)
        return None if span is None else ValueSpan(span.start + label.end(), span.end + label.end())
    return _check_device_serial(raw, quoted, kind)


def _capital_serial(value: str) -> bool:
    return (
        6 <= len(value) <= 20
        and value.isascii()
        and value.isalnum()
        and value.isupper()
        and any(ch.isdigit() for ch in value)
    )


_SERIAL_LABEL = ShortTextPattern(r"\s*(?:SN|S/N|(?i:serial(?: no\.?| number| #)?)):?[ ]")


_VIN = ShortTextPattern(r"\s*(?P<v>[A-HJ-NPR-Za-hj-npr-z0-9]{17})")
_PLATE = ShortTextPattern(r"\s*(?P<v>[A-Z0-9]{1,4}[- ]?[A-Z0-9]{1,5})")


def check_vehicle(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _VIN.match(raw)
    if m is not None and _whole(raw, quoted, *m.span("v")) and validators.vin_shape(m.text("v")):
        if is_placeholder_identifier(m.text("v")):
            return None
        return ValueSpan(*m.span("v"), 1.0 if validators.vin(m.text("v")) else 0.9)
    m = _PLATE.match(raw)
    if m is not None and _whole(raw, quoted, *m.span("v")):
        value = m.text("v")
        if 4 <= len(value) <= 9 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return None if is_placeholder_identifier(value) else ValueSpan(*m.span("v"), 0.8)
    return None


# --- addresses -------------------------------------------------------------------------------------

# After a street, a prose address goes on with ", City, ST 12345".
ADDRESS_TAIL = (
    r"(?:,[ ]*\p{Lu}[\pL\pM'’.-]+(?:[ ]\p{Lu}[\pL\pM'’.-]+){0,3})?"
    r"(?:,?[ ]+[A-Z]{2}\b)?(?:[ ]+\d{5}(?:-\d{4})?\b)?"
)


@functools.cache
def street_suffixes() -> str:
    data = load_data_file("words.toml")
    return "|".join(sorted(data["street_suffixes"], key=lambda w: (-len(w), w)))


@functools.cache
def _street() -> ShortTextPattern:
    return ShortTextPattern(
        r"(?i)\s*(?P<v>(?:\d{1,6}[A-Za-z]?(?:-\d{1,4})?\s+(?:[NSEW]\.?\s+|(?:north|south|east|west)\s+)?"
        r"(?:[\pL\d'’.-]+\s+){0,4}(?:" + street_suffixes() + r")\b\.?(?:\s+[NSEW]{1,2}\.?)?"
        r"(?:,?\s*(?:apt\.?|apartment|suite|ste\.?|unit|rm\.?|room|fl\.?|floor|bldg\.?|building|lot|#)\s*#?[A-Za-z0-9-]{1,6})?"
        r"|p\.?\s?o\.?\s+box\s+\d{1,6})(?-i:" + ADDRESS_TAIL + r"))"
    )


# Street name first, number after: "Calle Baca 2258, Col. Las Águilas", "Av. Leyva 2118", "Hauptstraße 5".
_STREET_NAME_FIRST = ShortTextPattern(
    r"(?i)\s*(?P<v>(?:(?:calle|calz\.?|calzada|av\.?|avda\.?|avenida|blvd\.?|bulevar|paseo|camino|carretera|privada|cerrada|"
    r"callej[oó]n|prolongaci[oó]n|rua|travessa|via|viale|piazza|rue|chemin|all[ée]e|boulevard|avenue|straat|laan)"
    r"\s+(?:[\pL\pM.'’-]+\s+){0,4}|[\pL\pM]+(?:stra(?:ß|ss)e|gasse|weg|platz|allee|ring|damm|ufer)\s+)"
    r"(?:no\.?\s*|#\s*)?\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?"
    r"(?:,?\s*(?:col\.?|colonia|int\.?|interior|depto\.?|piso|apt\.?|bairro)\s+[\pL\pM\d .'’-]{1,40})?)"
)
# Lengths are checked after the match: a counted repetition of a Unicode class multiplies the
# program RE2 builds (this pattern took 67 ms to compile with `{2,60}`).
_LOOSE_STREET = ShortTextPattern(
    r"\s*(?P<v>\d{1,6}[A-Za-z]?\s+(?P<name>[\pL][\pL\d'’. -]{2,})"
    r"|(?P<lead>[\pL][\pL'’. -]{2,})\s+\d{1,5}[A-Za-z]?)"
)
_LOOSE_STREET_NAME, _LOOSE_STREET_LEAD = 61, 41
_PLACE = ShortTextPattern(r"\s*(?P<v>\pL[\pL\pM'’.-]*(?:\s+\pL[\pL\pM'’.-]*){0,3})")


def is_placeholder_place(value: str) -> bool:
    data = placeholders()
    lowered = value.lower().strip(" .,")
    if lowered in data.places or lowered in data.streets:
        return True
    return any(token.startswith(tuple(data.place_words)) for token in lowered.replace(",", " ").split())


def _is_place(value: str) -> bool:
    tokens = value.split()
    if not tokens or len(value) > 40 or is_placeholder_place(value):
        return False
    common = _word_lists()[1]
    lowered = [t.strip(".").lower() for t in tokens]
    if all(t in common for t in lowered) and lowered[-1] not in ("county", "parish", "borough"):
        return False
    return all(t[0].isupper() or t.lower() in name_particles() or not t[0].isalpha() for t in tokens)


def check_address(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _street().match(raw)
    if m is not None:
        value = m.text("v")
        end = m.end("v")
        # Let a unit number or a trailing ", Apt. 429" ride along in a quoted value.
        if quoted and raw[end:].strip():
            tail = raw[end:]
            if not tail.lstrip().startswith(","):
                return None
            end = len(raw.rstrip())
        if is_placeholder_place(raw[m.start("v") : end]):
            return None
        return ValueSpan(m.start("v"), end)
    nm = _STREET_NAME_FIRST.match(raw)
    if nm is not None and (not quoted or not raw[nm.end("v") :].strip()):
        return None if is_placeholder_place(nm.text("v") or "") else ValueSpan(*nm.span("v"))
    if kind == "place":
        pm = _PLACE.match(raw)
        if pm is None:
            return None
        value = pm.text("v").rstrip(".")
        if quoted and raw.strip() != value:
            return None
        if not _is_place(value):
            return None
        return ValueSpan(pm.start("v"), pm.start("v") + len(value), 0.9)
    if kind == "street" and quoted:
        lm = _LOOSE_STREET.fullmatch(raw.strip())
        if lm is not None and (
            len(lm.text("name")) > _LOOSE_STREET_NAME or len(lm.text("lead")) > _LOOSE_STREET_LEAD
        ):
            lm = None
        if lm is not None and not is_placeholder_place(raw.strip()):
            start = raw.find(raw.strip())
            return ValueSpan(start, start + len(raw.strip()), 0.8)
    return None


# --- URLs and secrets ----------------------------------------------------------------------------

_URL = ShortTextPattern(r"\s*(?P<v>(?:https?://|/)[^\s\"'<>`]{3,400})")
# A path segment or query parameter that carries a person's record id.
URL_IDENTIFIER = ShortTextPattern(
    r"(?i)(?:/(?:patients?|members?|charts?|records?|subscribers?|beneficiar(?:y|ies)|persons?|people|mrn|mychart/patient|encounters?|claims?)/(?P<seg>[A-Za-z0-9-]{4,40})(?:[/?#]|$)"
    r"|[?&;](?:mrn|patient_?id|patientid|member_?id|memberid|ssn|dob|birth_?date|chart|chart_?id|mrn_?id|subscriber_?id|pid|patient|record_?id|name|email|phone)=(?P<qv>[^&#\s]{3,80}))"
)


def url_carries_identifier(url: str) -> bool:
    for m in URL_IDENTIFIER.finditer(url):
        seg = m.group("seg")
        if seg is not None:
            if seg.startswith(("{", ":", "<")) or _UUID.fullmatch(seg) is not None:
                continue
            if sum(ch.isdigit() for ch in seg) >= 4 and not is_placeholder_identifier(seg):
                return True
            continue
        qv = m.group("qv")
        if qv and not qv.startswith(("{", ":", "<", "$", "%7B")) and not is_placeholder_identifier(qv):
            # FHIR search bounds (`birthdate=gt1944`, `birthdate=lt2019-11-19`) select a range of
            # people; `eq` and a bare value name one.
            if _SEARCH_BOUND.match(qv) is not None:
                continue
            return True
    return False


_SEARCH_BOUND = ShortTextPattern(r"(?:gt|lt|ge|le|ne|sa|eb|ap)[0-9]")


def check_url(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _URL.match(raw)
    if m is None:
        return None
    return ValueSpan(*m.span("v")) if url_carries_identifier(m.text("v")) else None


_SECRET_VALUE = ShortTextPattern(r"\s*(?P<v>[^\s\"'`,;]{6,512})")
# Code on the right of `password =`: a call, an index, an attribute chain, a plain identifier.
_EXPRESSION = ShortTextPattern(
    r"[^()\[\]{}]*[()\[\]{}].*|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[A-Za-z_]\w*=.*"
)
_IDENTIFIER_NAME = ShortTextPattern(r"[a-z_][a-z0-9_]*|[A-Z_][A-Z0-9_]*")


def _looks_like_code(value: str) -> bool:
    if _EXPRESSION.fullmatch(value) is not None:
        return True
    # snake_case or UPPER_CASE names; a 32-digit hex token has digits all through it.
    digits = sum(ch.isdigit() for ch in value)
    return _IDENTIFIER_NAME.fullmatch(value) is not None and (digits <= 3 or "_" in value)


def _looks_like_words(value: str) -> bool:
    tokens = "".join(ch if ch.isalnum() else " " for ch in value).split()
    return len(tokens) >= 3 and all(t.isalpha() and t.islower() for t in tokens)


_ENV_REFERENCE = ShortTextPattern(
    r"(?i)^(?:\$\{?[A-Z_][A-Z0-9_]*\}?|%[A-Z_]+%|\$\([^)]*\)|env\(|os\.(?:environ|getenv)|process\.env|ENV\[|System\.getenv|secrets?\.|vault:|ref\+|arn:aws:secretsmanager|\{\{)"
)


def is_placeholder_secret(value: str) -> bool:
    lowered = value.lower().strip()
    data = placeholders()
    if lowered in data.secret_values or _ENV_REFERENCE.match(value) is not None:
        return True
    if any(marker in lowered for marker in data.secret_markers):
        return True
    if len(set(lowered)) <= 3:
        return True
    return lowered.startswith(("sk-...", "xxx", "***"))


def secret_strength(value: str) -> bool:
    """Enough variety that a person chose or a machine generated it (not a word or a flag)."""
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )
    if len(value) >= 16 and classes >= 2:
        return True
    return len(value) >= 8 and classes >= 3


def check_secret(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
    m = _SECRET_VALUE.match(raw)
    if m is None:
        return None
    value = m.text("v") or ""
    if quoted and raw.strip() != value:
        # A quoted credential with spaces is a sentence, not a secret.
        return None
    if (not quoted and _looks_like_code(value)) or _looks_like_words(value):
        return None
    if "://" in value:
        from phiwarden.detect.secrets import url_credentials_are_real

        return ValueSpan(*m.span("v")) if url_credentials_are_real(value) else None
    if is_placeholder_secret(value) or not secret_strength(value):
        return None
    if value.replace(".", "").replace("-", "").isdigit():
        return None
    # `urn:ihe:pat:apsr:cancer:breast:2010`: lower-case words between colons are a URN's segments,
    # read from its `pat:`.
    segments = value.split(":")
    if len(segments) >= 3 and all(segment.islower() or segment.isdigit() for segment in segments):
        return None
    return ValueSpan(*m.span("v"))


_UNCACHED_CHECKS: dict[str, ValueCheck] = {
    "name": check_name,
    "date": check_date,
    "ssn": check_ssn,
    "phone": check_phone,
    "fax": check_phone,
    "email": check_email,
    "zip": check_zip,
    "ip": check_ip,
    "mrn": check_mrn,
    "health_plan": check_health_plan,
    "account": check_account,
    "license": check_license,
    "other_id": check_other_id,
    "device": check_device,
    "vehicle": check_vehicle,
    "address": check_address,
    "url": check_url,
    "secret": check_secret,
}

# Checks are pure functions of (text, quoted, kind), and logs and exports repeat the same values.
CHECKS: dict[str, ValueCheck] = {
    category: functools.lru_cache(maxsize=16384)(check) for category, check in _UNCACHED_CHECKS.items()
}
