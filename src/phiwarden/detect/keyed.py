"""Values next to field names: `dob: "1990-02-03"`, `first_name="Ana"`, `"ssn"=>"…"`, `<given>…</given>`.

Linear-time passes find every `name <separator> value` whose name contains a word of the field
vocabulary, whatever the language: JSON, YAML, TOML, .env, logs (`key=value`), Ruby hashes,
Python/JS/Go/C#/Java literals and keyword arguments, builder calls (`.firstName("Ana")`), SQL
`SET`/`WHERE`, human labels ("Date of Birth: …"), XML elements and `value` attributes. The patterns
stop at the first character of the value; the value itself is read here with bounded look-ahead, so a
line of many pairs costs time linear in its length. The field name decides the category (`fields.py`);
the value must then have that category's shape (`values.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from phiwarden.detect.candidate import Candidate
from phiwarden.detect.fields import FieldClass, FieldClassifier, key_phrases
from phiwarden.detect.rx import Match, Pattern, compile_pattern, literal_alternation
from phiwarden.detect.values import CHECKS, ValueSpan, name_particles

# A custom detector's own check of a value found under one of its `keys` (same form as `values.CHECKS`).
CustomCheck = Callable[[str, bool, str], "ValueSpan | None"]

CONFIDENCE = {"strong": 0.9, "medium": 0.55, "weak": 0.4}
MAX_QUOTED = 300
MAX_UNQUOTED = 160
MAX_LIST_ITEMS = 16

_KC = r"[A-Za-z0-9$@.\-_]"
# A key starts a line or follows a character that cannot be part of it (RE2 has no look-behind).
_LEAD = r"(?:(?m:^)|[^A-Za-z0-9$@.\-_\\\"'`])"
# `@"…"` is an Objective-C string.
_QUOTE = r"(?:@?\\?[\"'`])"
_SEP = r"[ \t]*(?:\*\*)?[ \t]*(?P<sep>=>|:=|:|={1,3}|\(|,)[ \t]*(?:\*\*[ \t]*)?"
# A value may sit inside a call: `LocalDate.parse("…")`, `String::from("…")`, `c("…")`, or a sigil `~D[…]`.
_CALL = r"(?:[A-Za-z_][A-Za-z0-9_.:]{0,40}[ \t]*\([ \t]*){1,2}|~[A-Za-z]\["
# A Ruby block holding a string or a date (`first_name { "Ana" }`, `dob { Date.parse("…") }`,
# `dob { Date.new(1970, 4, 22) }`, FactoryBot); `Patient{FirstName: …}` is not one.
_BLOCK = r"[ \t]*(?P<bsep>\{)[ \t]*(?P<bopen>(?:" + _CALL + r")?[\"']|(?:" + _CALL + r")[0-9])"
# The opener stops before a list's first element so that a key inside the list is still read.
# `<%= … %>` is an ERB tag (Rails fixtures: `dob: <%= Date.new(1979, 3, 14) %>`).
_OPEN_ANY = r"(?P<open>\\?[\"'`]|\[|<%=|[^\s\"'`,;&|(){}\[\]<>=\\])"
# Words that may follow the telling word of a field name: ssn_number, zipCode, admittedOn, address1.
_TAIL_WORDS = ("number", "num", "no", "nbr", "id", "ids", "code", "date", "dt", "on", "at", "time", "ts",
               "value", "val", "str", "string", "text", "txt", "raw", "home", "primary", "main")  # fmt: skip


def _capital(word: str) -> str:
    return word[0].upper() + word[1:]


def _tail() -> str:
    lower = literal_alternation(list(_TAIL_WORDS))
    capital = literal_alternation([_capital(w) for w in _TAIL_WORDS])
    upper = literal_alternation([w.upper() for w in _TAIL_WORDS])
    return rf"(?:[_.\-]?(?:{lower}|{upper}|[0-9]{{1,2}})|{capital}){{0,2}}"


def _escape(text: str) -> str:
    return literal_alternation([text])


def _key_forms(phrases: Iterable[tuple[str, ...]]) -> tuple[str, str, str]:
    """Field names ending in one of `phrases` (then tail words) in snake/kebab, camel and upper case.

    `date of birth` is found as date_of_birth, date-of-birth, dateofbirth, dateOfBirth, DateOfBirth
    and DATE_OF_BIRTH. The three spellings are separate alternatives with their own word-boundary
    rule; compiled together they multiply the automaton's states, so they run as separate passes.
    """
    lower, capital, upper = [], [], []
    for words in sorted(phrases):
        first, rest = words[0], words[1:]
        sep = r"[_.\-]?"
        lower.append(_escape(first) + "".join(f"(?:{sep}{_escape(w)}|{_escape(_capital(w))})" for w in rest))
        capital.append(
            _escape(_capital(first)) + "".join(f"{sep}(?:{_escape(_capital(w))}|{_escape(w)})" for w in rest)
        )
        upper.append(_escape(first.upper()) + "".join(f"{sep}{_escape(w.upper())}" for w in rest))
    tail = _tail()
    # One more word may follow the phrase before the tail: cgm_transmitter_id, pumpSerialNo.
    extra = {"lower": r"(?:[_.\-][a-z]{2,12}|[A-Z][a-z]{1,12})?", "upper": r"(?:[_.\-][A-Z]{2,12})?"}
    return (
        rf"(?:{_KC}*[0-9$@.\-_])?(?:{'|'.join(lower)}){extra['lower']}{tail}",
        rf"(?:{_KC}*[a-z0-9$@.\-_])?(?:{'|'.join(capital)}){extra['lower']}{tail}",
        rf"(?:{_KC}*[a-z0-9$@.\-_])?(?:{'|'.join(upper)}){extra['upper']}{tail}",
    )


_CALL_PREFIX = Pattern(_CALL)
# SQL's typed literals: `dob = DATE '1971-01-30'`, `TIMESTAMP '2024-01-02 08:00'`.
_SQL_TYPED_LITERAL = Pattern(r"(?i:date|timestamp|time)[ \t]+'")


def _open_name(particles: Iterable[str]) -> str:
    """Names start with a capital (or a letter of a script without case): `name = "utf-8"` is code.
    A surname may lead with lowercase particles: `family_name: "da Cruz"`, `"van der Berg"`."""
    lead = r"(?:(?:" + literal_alternation(sorted(particles)) + r")[ ]){0,3}"
    quoted = (
        r"(?:@?\\?[\"'`]|\[[ \t\r\n]{0,40}\\?[\"']|(?:"
        + _CALL
        + r")[\"']"
        # YAML: a flow list of bare names (`given: [Ana, Lucía]`), a block list (`given:` then `- Ana`).
        + r"|\[[ \t]{0,4}|[ \t]*\r?\n[ \t]{0,40}-[ \t]{1,4}(?:\\?[\"'])?)?"
    )
    return r"(?P<open>" + quoted + lead + r"[\p{Lu}\p{Lo}])"


def _pair_pattern(key: str, opener: str) -> Pattern:
    return compile_pattern(rf"{_LEAD}(?P<kq>{_QUOTE})?(?P<key>{key}){_QUOTE}?(?:{_SEP}{opener}|{_BLOCK})")


def _label_pattern(phrases: Iterable[tuple[str, ...]]) -> Pattern:
    """Labels in prose, tickets and logs: "Date of Birth: …", "member id 9919…", "ZIP 22075".

    The label's last word (or the one before "id"/"number") is a field word. After a colon or a dash
    any value may follow; after a plain space (or "is"/"was") only one that starts with a digit, a
    quote, a bracket or a plus sign, which is what keeps ordinary prose out of this pass.
    """
    spelled = sorted({" ".join(p) for p in phrases}, key=lambda t: (-len(t), t))
    # A word of a label may be a possessive: "Driver's license", "Patient's name".
    between = r"(?:['’]s)?[ ]"
    words = "|".join(_escape(t).replace("\\ ", between) for t in spelled)
    suffix = r"[ ](?i:id|number|no\.?|#|num)"
    label = r"(?i:" + words + r")(?:" + suffix + r")?"
    # Single-word keys before a colon are read by the field-name passes; this pass reads labels of
    # several words ("Date of Birth:", "Member ID:" on a line of its own) and labels of any length
    # with no separator ("ZIP 22075").
    keys = [r"(?:[A-Za-z][A-Za-z'’]*[ ]){1,3}" + label, r"(?i:" + words + r")" + suffix]
    several = [_escape(t).replace("\\ ", between) for t in spelled if " " in t]
    if several:
        keys.append(r"(?i:" + "|".join(several) + r")(?:" + suffix + r")?")
    lead = r"(?:(?m:^)|[^A-Za-z0-9_.$@\-])"
    return compile_pattern(
        lead + r"(?P<key>" + "|".join(keys) + r")"
        # A dash separates only with space before it: "DOB - 1984-07-19", not "MPI-I-2006".
        r"(?P<sep>[ \t]*(?:\*\*)?[ \t]*[:=]|[ \t]+(?:\*\*[ \t]*)?[-–])[ \t]*(?:\*\*[ \t]*)?(?P<open>[^\s])"
        r"|" + lead + r"(?P<skey>(?:[A-Za-z][A-Za-z'’]*[ ]){0,3}" + label + r")"
        # "discharged home on 02/19/2024", "admitted to the ICU on …": a few words may come before "on".
        r"[ \t]+(?:(?i:is|was|of|on|at)[ \t]+|(?:[A-Za-z]{2,10}[ \t]+){1,3}(?i:on|at)[ \t]+)?"
        r"(?P<soft>[0-9\"'(+`]|[A-Za-z]{1,4}[-#]?[0-9])"
    )


_ASSIGNMENTS = frozenset({b":", b"=", b"=>", b":=", b"=="})

# Without a colon, a label vouches only for values whose shape is telling on its own.
_SOFT_CATEGORIES = frozenset(
    {"ssn", "mrn", "date", "phone", "fax", "email", "zip", "ip", "health_plan", "account", "license",
     "vehicle", "device", "other_id", "url"}
)  # fmt: skip
_XML = Pattern(
    r"<(?P<tag>[A-Za-z_][\w:.\-]{0,63})(?P<attrs>\s[^<>]{0,300})?>(?P<text>[^<>\r\n]{1,200})</"
    r"|<(?P<vtag>[A-Za-z_][\w:.\-]{0,63})\s(?P<before>[^<>]{0,300}?)\bvalue=\"(?P<vattr>[^\"<>]{1,200})\""
    r"(?P<after>[^<>]{0,300})"
)
# `"patient": {"id": "…"}`: a generic id key named by the object that holds it.
_NESTED_ID = Pattern(
    r"(?P<parent>[A-Za-z][A-Za-z_]{2,40})[\"']?[ \t]*[:=][ \t]*\{[^{}]{0,200}?"
    r"[\"'](?P<child>id|Id|ID|identifier|number)[\"'][ \t]*(?P<sep>:|=>?)[ \t]*(?P<open>[\"'])"
)
# In HTML forms the field is named by an attribute (`<input name="dob" value="…">`), not the tag.
_NAME_ATTRIBUTE = Pattern(r"\b(?:name|id|data-field|formControlName)=[\"'](?P<name>[^\"'<>]{1,64})[\"']")
# In HTML tables and templates a cell's text is named by its class (`<td class="dob">…</td>`).
_CLASS_ATTRIBUTE = Pattern(r"\bclass=[\"'](?P<name>[^\"'<>]{1,64})[\"']")


@dataclass(frozen=True, slots=True)
class KeyedValue:
    key: str
    value: str
    value_start: int  # byte offset of `value` in the text
    quoted: bool
    # A prose label without a colon ("ZIP 22075"): only values of telling shape count.
    soft: bool = False
    separator: bytes = b":"
    # Read from inside a call: `LocalDate.parse("…")`. A credential is never a call's argument
    # (`getpass("Password:")` is a prompt).
    called: bool = False
    # The first item of a list — `"given": ["Ana", "Lucía"]` ("quoted"), `given: [Ana, Lucía]` ("bare"),
    # `given:` then `- Ana` lines ("block") — whose other items are read too.
    listed: str = ""


def _closing(data: bytes, start: int, quote: bytes, limit: int) -> int:
    """Index of the quote that closes a string whose content starts at `start`, or -1."""
    end = min(len(data), start + limit)
    newline = data.find(b"\n", start, end)
    if newline >= 0:
        end = newline
    pos = start
    while True:
        found = data.find(quote, pos, end)
        if found < 0:
            return -1
        backslashes = 0
        while found - backslashes - 1 >= start and data[found - backslashes - 1] == 0x5C:
            backslashes += 1
        if len(quote) == 2 or backslashes % 2 == 0:
            return found
        pos = found + 1


def read_value(data: bytes, open_at: int) -> tuple[int, int, bool, bool] | None:
    """The value that starts at `open_at`: (start, end, quoted, inside a call), bounded in length."""
    pos = open_at
    if data[pos : pos + 1] in (b" ", b"\t", b"\r", b"\n"):
        pos = _block_item_start(data, pos)
        if pos < 0:
            return None
    erb = data.startswith(b"<%=", pos)
    if erb:
        pos = _skip_space(data, pos + 3)
    typed = _SQL_TYPED_LITERAL.match(data, pos, pos + 20)
    if typed is not None:
        pos = typed.end - 1
    call = _CALL_PREFIX.match(data, pos, pos + 100)
    called = False
    if call is not None and data[call.end : call.end + 1] in (b'"', b"'"):
        pos, called = call.end, True
    elif call is not None and data[pos : pos + 1] == b"~":
        close = data.find(b"]", call.end, call.end + MAX_UNQUOTED)
        return (call.end, close, True, True) if close > 0 else None
    if data[pos : pos + 1] == b"[":
        pos += 1
        while pos < len(data) and data[pos] in b" \t\r\n":
            pos += 1
    if data[pos : pos + 1] == b"@" and data[pos + 1 : pos + 2] in (b'"', b"'"):
        pos += 1
    head = data[pos : pos + 2]
    if head[:1] == b"\\" and head[1:2] in (b'"', b"'"):
        quote = head
    elif head[:1] in (b'"', b"'", b"`"):
        quote = head[:1]
    else:
        newline = data.find(b"\n", pos, pos + MAX_UNQUOTED)
        end = newline if newline >= 0 else min(len(data), pos + MAX_UNQUOTED)
        if erb:
            close = data.find(b"%>", pos, end)
            end = len(data[pos:close].rstrip()) + pos if close >= 0 else end
        if end > pos and data[end - 1] == 0x0D:
            end -= 1
        return pos, end, False, called
    start = pos + len(quote)
    close = _closing(data, start, quote, MAX_QUOTED)
    if close < 0:
        return None
    return start, close, True, called


def list_items(data: bytes, close: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the strings after the first of a list, whose closing quote is at `close`.

    `"given": ["Ana", "Lucía"]`: FHIR keeps a person's given names in a list. Bounded in items and
    in the space between them, so a hostile list costs no more than its first few items.
    """
    quote = data[close : close + 2] if data[close : close + 1] == b"\\" else data[close : close + 1]
    pos = close + len(quote)
    for _ in range(MAX_LIST_ITEMS):
        pos = _skip_space(data, pos)
        if data[pos : pos + 1] != b",":
            return
        pos = _skip_space(data, pos + 1)
        if data[pos : pos + len(quote)] != quote:
            return
        start = pos + len(quote)
        end = _closing(data, start, quote, MAX_QUOTED)
        if end < 0:
            return
        yield start, end
        pos = end + len(quote)


def _block_item_start(data: bytes, pos: int) -> int:
    """Where the first item of a YAML block list that follows a key at `pos` begins, or -1."""
    limit = min(len(data), pos + 64)
    while pos < limit and data[pos] in b" \t\r\n":
        pos += 1
    if data[pos : pos + 1] != b"-":
        return -1
    pos += 1
    while pos < limit and data[pos] in b" \t":
        pos += 1
    return pos


def _line_end(data: bytes, pos: int) -> int:
    end = data.find(b"\n", pos, pos + MAX_UNQUOTED)
    return end if end >= 0 else min(len(data), pos + MAX_UNQUOTED)


def block_items(data: bytes, first: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the items after the first of a YAML block list whose first item is at `first`:
    the following lines that open with the same indentation and a dash."""
    prefix = data[data.rfind(b"\n", max(0, first - 200), first) + 1 : first]
    line_end = _line_end(data, first)
    for _ in range(MAX_LIST_ITEMS):
        pos = line_end + 1
        if data[line_end : line_end + 1] != b"\n" or data[pos : pos + len(prefix)] != prefix:
            return
        item = pos + len(prefix)
        line_end = _line_end(data, item)
        end = line_end - 1 if data[line_end - 1 : line_end] == b"\r" else line_end
        comment = data.find(b" #", item, end)
        end = comment if comment >= 0 else end
        value = data[item:end].rstrip(b" \t")
        if value[:1] in (b'"', b"'") and value[-1:] == value[:1] and len(value) > 1:
            yield item + 1, item + len(value) - 1
        elif value:
            yield item, item + len(value)


def _bare_item_length(data: bytes, start: int) -> int:
    end = start
    limit = min(len(data), start + MAX_UNQUOTED)
    while end < limit and data[end] not in b",]\r\n":
        end += 1
    return end - start


def bare_items(data: bytes, first_end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the items after the first of a flow list of bare scalars (`[Ana, Lucía]`)."""
    pos = first_end
    for _ in range(MAX_LIST_ITEMS):
        pos = _skip_space(data, pos)
        if data[pos : pos + 1] != b",":
            return
        pos = _skip_space(data, pos + 1)
        end = pos + _bare_item_length(data, pos)
        value_end = len(data[pos:end].rstrip(b" \t")) + pos
        # A colon or a bracket opens a key or a list of its own: the list of names has ended (and
        # a hostile run of `key: [a, key: [a, …` is not read again from every key).
        if value_end == pos or data.find(b":", pos, value_end) >= 0 or data.find(b"[", pos, value_end) >= 0:
            return
        yield pos, value_end
        pos = end


def _names_a_code(data: bytes, pos: int, key: str) -> bool:
    """Whether `key` at `pos` is the display name of a coded value: CDA's
    `<maritalStatusCode code="S" displayName="Never Married"/>` names the code, not a person."""
    if key.lower().replace("_", "") != "displayname":
        return False
    tag = data[max(0, pos - 400) : pos]
    opened = tag.rfind(b"<")
    return opened >= 0 and tag.rfind(b">") < opened and b"code=" in tag[opened:]


def _before(data: bytes, pos: int) -> bytes:
    """The last byte before `pos` that is not a space or a tab (looking back a little way)."""
    return data[max(0, pos - 64) : pos].rstrip(b" \t")[-1:]


def _skip_space(data: bytes, pos: int) -> int:
    limit = min(len(data), pos + 200)
    while pos < limit and data[pos] in b" \t\r\n":
        pos += 1
    return pos


@dataclass(frozen=True, slots=True)
class _Groups:
    """Group numbers of a pair pattern; -1 where the pattern has no such group."""

    key: int
    sep: int
    open: int
    quote: int
    soft: int
    soft_key: int
    block_sep: int
    block_open: int

    @classmethod
    def of(cls, pattern: Pattern) -> _Groups:
        index = pattern.group_index
        optional = [index.get(name, -1) for name in ("kq", "soft", "skey", "bsep", "bopen")]
        return cls(index["key"], index["sep"], index["open"], *optional)


class KeyedScanner:
    """Finds field-name/value pairs and turns the credible ones into candidates."""

    def __init__(self, classifier: FieldClassifier, custom_checks: dict[str, CustomCheck]) -> None:
        self.classifier = classifier
        self.custom_checks = custom_checks
        name_phrases, other_phrases = key_phrases(classifier.rules)
        lower, capital, upper = _key_forms(other_phrases)
        name_lower, name_capital, name_upper = _key_forms(name_phrases)
        self._passes: tuple[Pattern, ...] = (
            _pair_pattern(lower, _OPEN_ANY),
            _pair_pattern(f"{capital}|{upper}", _OPEN_ANY),
            _pair_pattern(f"{name_lower}|{name_capital}|{name_upper}", _open_name(name_particles())),
            _label_pattern(name_phrases | other_phrases),
        )
        # Group numbers, read once the patterns are compiled (on first use).
        self._groups: list[_Groups] | None = None

    def iter_values(self, data: bytes) -> Iterator[KeyedValue]:
        """Every field-name/value pair (for tests and tools; scanning goes through `candidates`)."""
        for pattern in self._passes:
            groups = _Groups.of(pattern)
            for m in pattern.finditer(data):
                item = self._read(m, data, groups)
                if item is not None:
                    yield item

    @staticmethod
    def _key(m: Match, data: bytes, groups: _Groups) -> tuple[str, bool]:
        soft = groups.soft >= 0 and m.group_span(groups.soft)[0] >= 0
        k_start, k_end = m.group_span(groups.soft_key if soft else groups.key)
        return data[k_start:k_end].decode("utf-8", "replace"), soft

    @classmethod
    def _read(cls, m: Match, data: bytes, groups: _Groups) -> KeyedValue | None:
        sep_start, sep_end = m.group_span(groups.sep)
        opener = groups.open
        if sep_start < 0 and groups.block_sep >= 0:
            sep_start, sep_end = m.group_span(groups.block_sep)
            opener = groups.block_open
        # `f(dob, x)` is a call; only a quoted key that opens a call or a bracket before a comma is
        # a pair: put("dob", "…"), {"dob", "…"}; in `('CE', 'LICENSE_NUMBER', 'HL70461')` it is a
        # tuple's item beside another.
        if data[sep_start:sep_end] == b"," and (
            groups.quote < 0
            or m.group_span(groups.quote)[0] < 0
            or _before(data, m.group_span(groups.quote)[0]) not in (b"(", b"[", b"{")
        ):
            return None
        key, soft = cls._key(m, data, groups)
        open_at = m.group_span(groups.soft if soft else opener)[0]
        found = read_value(data, open_at)
        if found is None:
            return None
        v_start, v_end, quoted, called = found
        listed = _list_form(data, open_at, quoted) or (
            "quoted" if called and _lists(data, open_at, v_start) else ""
        )
        # Bare words in a list after `=` are identifiers (`argtypes = [PGconn_ptr]`); after a colon
        # they are YAML scalars.
        if listed == "bare" and data[sep_start:sep_end].strip() != b":":
            listed = ""
        if listed == "bare":
            v_end = v_start + _bare_item_length(data, v_start)
        return KeyedValue(
            key,
            data[v_start:v_end].decode("utf-8", "surrogatepass"),
            v_start,
            quoted,
            soft,
            data[sep_start:sep_end].strip(b" \t*") if sep_start >= 0 else b" ",
            called,
            listed=listed,
        )

    def nested_id_candidates(self, data: bytes) -> list[Candidate]:
        return self._non_secret_candidates(iter_nested_ids(data))

    def error_message_candidates(self, data: bytes) -> list[Candidate]:
        """Values that error messages quote beside their field (validation and database errors)."""
        return self._non_secret_candidates(iter_error_values(data))

    def _non_secret_candidates(self, items: Iterable[KeyedValue]) -> list[Candidate]:
        # A credential is only taken from an assignment (`_append`); these readers see none.
        out: list[Candidate] = []
        for item in items:
            verdict = self.classifier.classify(item.key)
            if verdict is not None and verdict.category != "secret":
                self._append(out, item, verdict, "field")
        return out

    def candidates(self, data: bytes, *, xml: bool) -> list[Candidate]:
        out: list[Candidate] = []
        classify = self.classifier.classify
        if self._groups is None:
            self._groups = [_Groups.of(pattern) for pattern in self._passes]
        for pattern, groups in zip(self._passes, self._groups, strict=True):
            for m in pattern.finditer(data):
                # Most names found are not field names of interest: decide on the name first.
                key, soft = self._key(m, data, groups)
                verdict = classify(key)
                if verdict is None or (soft and verdict.category not in _SOFT_CATEGORIES):
                    continue
                if verdict.category == "name" and _names_a_code(data, m.start, key):
                    continue
                item = self._read(m, data, groups)
                if item is not None:
                    self._append(out, item, verdict, "field")
                    if item.listed:
                        self._append_rest_of_list(out, data, item, verdict)
        if xml:
            for item in iter_xml_values(data):
                verdict = classify(item.key)
                if verdict is not None:
                    self._append(out, item, verdict, "xml")
        return out

    def _append_rest_of_list(
        self, out: list[Candidate], data: bytes, first: KeyedValue, verdict: FieldClass
    ) -> None:
        close = first.value_start + len(first.value.encode("utf-8", "surrogatepass"))
        if first.listed == "block":
            items = block_items(data, first.value_start - (1 if first.quoted else 0))
        elif first.listed == "bare":
            items = bare_items(data, close)
        else:
            items = list_items(data, close)
        for start, end in items:
            value = data[start:end].decode("utf-8", "surrogatepass")
            self._append(out, dataclasses.replace(first, value=value, value_start=start), verdict, "field")

    def _append(self, out: list[Candidate], item: KeyedValue, verdict: FieldClass, prefix: str) -> None:
        if item.soft and verdict.category == "date" and verdict.kind not in ("birth", "death", "event"):
            return
        # A credential is assigned, not passed: `password=x` yes, `f("password", x)` no; nor is it
        # one of a list of bare words.
        if verdict.category == "secret" and (
            item.separator not in _ASSIGNMENTS or item.called or item.listed in ("bare", "block")
        ):
            return
        candidate = self.candidate_for(item, verdict, prefix)
        if candidate is not None:
            out.append(candidate)

    def candidate_for(self, item: KeyedValue, verdict: FieldClass, rule_prefix: str) -> Candidate | None:
        check = self.custom_checks.get(verdict.rule_id) or CHECKS[verdict.category]
        span = check(item.value, item.quoted, verdict.kind)
        if span is None:
            return None
        return make_candidate(
            item.value, item.value_start, span, verdict, f"{rule_prefix}.{verdict.category}"
        )


def make_candidate(
    value: str, value_start: int, span: ValueSpan, verdict: FieldClass, rule: str
) -> Candidate:
    """A candidate for `value[span]`, where `value` begins at byte `value_start` of the text."""
    head = value[: span.start].encode("utf-8", "surrogatepass")
    body = value[span.start : span.end].encode("utf-8", "surrogatepass")
    start = value_start + len(head)
    strength = "weak" if span.weak else verdict.strength
    return Candidate(
        start=start,
        end=start + len(body),
        category=verdict.category,
        rule=rule,
        confidence=CONFIDENCE[strength] * span.quality,
        needs_record=strength == "weak",
        anchors_record=strength == "strong" and verdict.category != "secret",
        named=True,
    )


# Calls that build a list of their arguments: R's `c("Ana", "Bo")`, Kotlin's `listOf(…)`, Java's `List.of(…)`.
_LIST_CALLS = frozenset(
    {b"c", b"list", b"listOf", b"arrayOf", b"setOf", b"mutableListOf", b"List.of", b"Set.of",
     b"Arrays.asList", b"vector", b"array", b"tuple"}
)  # fmt: skip


def _lists(data: bytes, open_at: int, value_start: int) -> bool:
    """Whether the innermost call that a quoted value at `value_start` sits in builds a list."""
    head = data[open_at : value_start - 1].rstrip(b" \t")
    if not head.endswith(b"("):
        return False
    name = head[:-1].rstrip(b" \t")
    cut = max(name.rfind(b"("), name.rfind(b" "))
    return name[cut + 1 :] in _LIST_CALLS


def _list_form(data: bytes, open_at: int, quoted: bool) -> str:
    head = data[open_at : open_at + 1]
    if head == b"[":
        return "quoted" if quoted else "bare"
    return "block" if head in (b" ", b"\t", b"\r", b"\n") else ""


def _named_by_attribute(
    data: bytes, m: Match, index: dict[str, int], groups: tuple[str, ...], attributes: tuple[Pattern, ...]
) -> str | None:
    for attribute in attributes:
        for group in groups:
            start, end = m.group_span(index[group])
            named = attribute.search(data, start, end) if start >= 0 else None
            if named is not None:
                n_start, n_end = named.group_span(attribute.group_index["name"])
                return data[n_start:n_end].decode("utf-8", "replace")
    return None


def iter_nested_ids(data: bytes) -> Iterator[KeyedValue]:
    index = _NESTED_ID.group_index
    for m in _NESTED_ID.finditer(data):
        p_start, p_end = m.group_span(index["parent"])
        c_start, c_end = m.group_span(index["child"])
        found = read_value(data, m.group_span(index["open"])[0])
        if found is not None and found[2]:
            key = f"{data[p_start:p_end].decode()} {data[c_start:c_end].decode()}"
            yield KeyedValue(key, data[found[0] : found[1]].decode("utf-8", "surrogatepass"), found[0], True)


# "invalid value 'Ana Ruiz' for field 'first_name'", "Duplicate entry '…' for key 'patients.ssn'".
_VALUE_FOR_FIELD = Pattern(
    r"(?i:value|entry)[ \t]+(?P<q>[\"'`])(?P<value>[^\"'`\r\n]{1,120})[\"'`][ \t]+(?i:for|in|of)[ \t]+"
    r"(?i:field|column|key|attribute|property|parameter)[ \t]+[\"'`]?(?P<key>[A-Za-z_][\w.-]{0,80})"
)
# PostgreSQL: "DETAIL:  Key (first_name, dob)=(Ana, 1984-07-19) already exists."
_PG_KEY = Pattern(r"\bKey \((?P<cols>[^()\r\n]{1,300})\)=\((?P<vals>[^()\r\n]{1,600})\)")
# Their readers run only on texts holding this (a structure trigger of the engine, kept small: it
# joins the one keyword pass of every text).
ERROR_MESSAGE_HINT = r"(?:value|entry)[ \t]+[\"'`]|Key \("


def iter_error_values(data: bytes) -> Iterator[KeyedValue]:
    index = _VALUE_FOR_FIELD.group_index
    for m in _VALUE_FOR_FIELD.finditer(data):
        v_start, v_end = m.group_span(index["value"])
        k_start, k_end = m.group_span(index["key"])
        # `patients.ssn_UNIQUE`: the column of a table's index.
        key = data[k_start:k_end].decode("utf-8", "replace").rpartition(".")[2]
        yield KeyedValue(key, data[v_start:v_end].decode("utf-8", "surrogatepass"), v_start, True)
    cols, vals = _PG_KEY.group_index["cols"], _PG_KEY.group_index["vals"]
    for m in _PG_KEY.finditer(data):
        names = data[slice(*m.group_span(cols))].split(b",")
        start, end = m.group_span(vals)
        values = data[start:end].split(b",")
        if len(names) != len(values):
            continue
        offset = start
        for name, value in zip(names, values, strict=True):
            lead = len(value) - len(value.lstrip())
            text = value.strip()
            if text:
                key = name.strip().strip(b'"').decode("utf-8", "replace")
                yield KeyedValue(key, text.decode("utf-8", "surrogatepass"), offset + lead, True)
            offset += len(value) + 1


def iter_xml_values(data: bytes) -> Iterator[KeyedValue]:
    index = _XML.group_index
    for m in _XML.finditer(data):
        for tag_group, value_group in (("tag", "text"), ("vtag", "vattr")):
            t_start, t_end = m.group_span(index[tag_group])
            if t_start < 0:
                continue
            v_start, v_end = m.group_span(index[value_group])
            tag = data[t_start:t_end].decode("utf-8", "replace").rpartition(":")[2]
            if tag_group == "vtag":
                tag = _named_by_attribute(data, m, index, ("before", "after"), (_NAME_ATTRIBUTE,)) or tag
            elif m.group_span(index["attrs"])[0] >= 0:
                tag = (
                    _named_by_attribute(data, m, index, ("attrs",), (_NAME_ATTRIBUTE, _CLASS_ATTRIBUTE))
                    or tag
                )
            yield KeyedValue(tag, data[v_start:v_end].decode("utf-8", "surrogatepass"), v_start, True)
