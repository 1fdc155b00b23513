"""The detection pipeline for one text: passes that propose candidates, then steps that decide.

    patterns ─┐
    keyed    ─┤                          record context ─> overlaps ─> propagation
    tables   ─┼─> candidates ─> vetoes ─>                                  ─> pragmas ─> threshold
    HL7/FHIR ─┤
    SQL      ─┘

Every pass reads the UTF-8 bytes of the text with linear-time patterns; the deciding steps work on
the (few) candidates only.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import os
from collections.abc import Iterable, Iterator

from phiwarden.detect import blobs
from phiwarden.detect.candidate import Candidate
from phiwarden.detect.fields import FieldClass, FieldClassifier, builtin_rules, rules_from_data
from phiwarden.detect.finding import Finding, fingerprint, mask
from phiwarden.detect.keyed import ERROR_MESSAGE_HINT, CustomCheck, KeyedScanner, KeyedValue
from phiwarden.detect.prose import PROSE_NAME, prose_scanner
from phiwarden.detect.registry import Detector, PatternSet, builtin_detectors
from phiwarden.detect.rx import Pattern, compile_pattern, literal_alternation
from phiwarden.detect.structure import dicom_json, fhir, hl7, parametrize, rows, sas, sql, tabular, x12
from phiwarden.detect.text import Text
from phiwarden.detect.values import ValueSpan
from phiwarden.detect.vocabulary import placeholders
from phiwarden.policy.model import DetectionSettings, Policy

# How far (bytes) a strong value makes its surroundings a patient record.
RECORD_WINDOW = 500
# What a weak value gains inside a record, and the most it may reach.
RECORD_BOOST = 0.4
RECORD_CEILING = 0.9
PROPAGATED_CONFIDENCE = 0.85
# Base64 inside decoded base64 is decoded too, once.
_MAX_DECODING_DEPTH = 2
_BLOB_SEPARATOR = "\n\n"
# How far (bytes) a stand-in surname silences the single-word names around it.
PLACEHOLDER_WINDOW = 120
_MAX_PROPAGATED_VALUES = 512
_MIN_PROPAGATED_DIGITS = 6

DELIMITED_EXTENSIONS = (".csv", ".tsv", ".psv", ".tab")
# Exports that are often delimited under another name: read as a table when the first line is a
# header (plain column names, two of them naming PHI), as text of unknown origin is. In every text,
# a table whose header is a later line is read too (tabular.embedded_cells).
_MAYBE_DELIMITED_EXTENSIONS = (".txt", ".dat", ".out", ".exp")
_PRAGMA = Pattern(
    r"phiwarden:[ \t]*(?P<kind>allow-next-line|allow)(?:[ \t]+(?P<cats>[a-z_]+(?:[ \t]*,[ \t]*[a-z_]+)*))?"
)
# Which structure parsers a text needs, found in the same pass as the detectors' keywords.
_STRUCTURE_TRIGGERS = {
    "sql": r"insert\s+(?:ignore\s+)?into|copy\s+[\w.\"]+\s*\(",
    "hl7": r"(?:PID|NK1|GT1|IN1|IN2|PV1|MRG)\|",
    "x12": r"(?:ISA|NM1)\*",
    "parametrize": r"parametrize\(",
    "table_test": r"\[\]struct[ \t]*\{",
    "nested_id": r"[\"'](?:id|Id|ID|identifier|number)[\"'][ \t]*(?::|=>?)",
    "pipe_table": r"[|+][ \t]*:?-{3,}",
    "wide_table": tabular.WIDE_HINT,
    "html_table": tabular.HTML_HINT,
    "record_rows": rows.HINT,
    "record_calls": rows.CALL_HINT,
    "dicom_json": dicom_json.HINT,
    "sas_datalines": sas.HINT,
    "error_message": ERROR_MESSAGE_HINT,
    "fhir": r"\"resourceType\"|value=\"|extension=\"|\"value\"",
}


class Engine:
    """Detection compiled for one policy; reuse it across texts (compiling costs milliseconds)."""

    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        builtin, _ = builtin_detectors()
        detectors = [d for d in (*builtin, *settings.detectors) if self._enabled(d)]
        self.patterns = PatternSet(detectors, _STRUCTURE_TRIGGERS)
        rules, meta, person = builtin_rules()
        custom_rules = rules_from_data(
            [
                {"id": d.id, "category": d.category, "words": list(d.keys), "strength": "strong"}
                for d in settings.detectors
                if d.keys
            ],
            id_prefix="custom",
        )
        self.classifier = FieldClassifier([*custom_rules, *rules], meta, person)
        self.keyed = KeyedScanner(
            self.classifier, {d.id: _custom_check(d) for d in settings.detectors if d.keys}
        )
        self.min_confidence = settings.min_confidence
        self.salt = settings.fingerprint_salt.encode()
        # A quoted stand-in surname ('Doe', 'Mouse', 'Mustermann') makes its record a placeholder.
        # XML writes it as an element's text: <family>Everyman</family>.
        self._placeholder_names = compile_pattern(
            "(?:[\"']|>)(?i:(?:[a-z]\\.?[ ])?(?:"
            + literal_alternation(sorted(placeholders().record_surnames))
            + "))(?:[\"']|</)"
        )

    def _enabled(self, detector: Detector) -> bool:
        disabled = self.settings.disabled
        return detector.id not in disabled and detector.category not in disabled

    # --- proposing ---------------------------------------------------------------------------------

    def candidates(self, text: Text, path: str | None, *, prose: bool = False) -> list[Candidate]:
        data = text.data
        activation = self.patterns.active(data)
        out = list(self.patterns.candidates(data, activation.stages))
        out += self.keyed.candidates(data, xml=b"</" in data or b'value="' in data)
        out += self._structured(data, path, activation.triggers)
        if prose:
            out += prose_scanner().candidates(data)
        disabled = self.settings.disabled
        if disabled:
            out = [c for c in out if c.category not in disabled and c.rule not in disabled]
        out = _zip_codes_apart(data, out, keep_zip="zip" not in disabled)
        if self.settings.report_provider_ids:
            for c in out:
                if c.rule.startswith("provider."):
                    c.report = True
        return out

    def _structured(self, data: bytes, path: str | None, triggers: frozenset[str]) -> list[Candidate]:
        out: list[Candidate] = []
        cells: list[tuple[str, Iterable[tabular.Cell]]] = []
        is_phi_column = self._is_phi_column
        lower_path = (path or "").lower()
        if lower_path.endswith(DELIMITED_EXTENSIONS):
            cells.append(("csv", tabular.delimited_cells(data, is_phi_column)))
            # Rows printed without their header (grep, tail -n +2) are records by what they hold.
            cells.append(("row", rows.delimited_record_cells(data)))
        elif (not path or lower_path.endswith(_MAYBE_DELIMITED_EXTENSIONS)) and b"\n" in data[:4096]:
            cells.append(("csv", tabular.delimited_cells(data, is_phi_column, sniff=True)))
        elif b"\n" in data:
            # A table pasted into a Markdown file, a log or a prompt starts at any line of it.
            cells.append(("csv", tabular.embedded_cells(data, is_phi_column)))
        if "pipe_table" in triggers:
            cells.append(("table", tabular.pipe_table_cells(data, is_phi_column)))
        if "html_table" in triggers:
            cells.append(("table", tabular.html_table_cells(data, is_phi_column)))
        if "wide_table" in triggers:
            cells.append(("table", tabular.fixed_width_cells(data, is_phi_column)))
        if "parametrize" in triggers:
            cells.append(("parametrize", parametrize.parametrize_cells(data)))
        if "table_test" in triggers:
            cells.append(("parametrize", parametrize.table_test_cells(data)))
        if "record_rows" in triggers:
            cells.append(("row", rows.record_row_cells(data)))
        if "record_calls" in triggers:
            cells.append(("row", rows.record_call_cells(data)))
        if "sas_datalines" in triggers:
            cells.append(("table", sas.datalines_cells(data)))
        if "sql" in triggers:
            cells.append(("sql", sql.insert_cells(data)))
            cells.append(("sql", sql.copy_cells(data)))
        for prefix, items in cells:
            for header, cell, offset in items:
                verdict = self.classifier.classify(header)
                if verdict is None:
                    continue
                value = cell.decode("utf-8", "surrogatepass")
                candidate = self.keyed.candidate_for(KeyedValue(header, value, offset, True), verdict, prefix)
                if candidate is not None:
                    out.append(candidate)
        if "hl7" in triggers:
            out += self._verdict_values("hl7", hl7.iter_fields(data))
        if "nested_id" in triggers:
            out += self.keyed.nested_id_candidates(data)
        if "error_message" in triggers:
            out += self.keyed.error_message_candidates(data)
        if "x12" in triggers:
            out += self._verdict_values("x12", x12.iter_fields(data))
        if "fhir" in triggers:
            out += self._verdict_values("fhir", fhir.iter_values(data))
        if "dicom_json" in triggers:
            out += self._verdict_values("dicom", dicom_json.iter_values(data))
        return out

    def _verdict_values(self, prefix: str, items: Iterator[tuple[FieldClass, bytes, int]]) -> list[Candidate]:
        out = []
        for verdict, raw, offset in items:
            candidate = self.keyed.candidate_for(
                KeyedValue(prefix, raw.decode("utf-8", "surrogatepass"), offset, True), verdict, prefix
            )
            if candidate is not None:
                out.append(candidate)
        return out

    def _is_phi_column(self, header: str) -> bool:
        verdict = self.classifier.classify(header)
        return verdict is not None and verdict.category != "secret"

    # --- deciding ----------------------------------------------------------------------------------

    def decide(self, text: Text, candidates: list[Candidate]) -> list[Candidate]:
        data = text.data
        vetoed = _Spans([c for c in candidates if not c.report])
        reportable = [c for c in candidates if c.report and not vetoed.overlaps(c)]
        reportable = self._drop_placeholder_records(data, reportable)
        _apply_record_context(reportable)
        chosen = _resolve_overlaps(reportable)
        chosen += _propagate(data, chosen, self.min_confidence)
        chosen = _apply_pragmas(data, chosen)
        return sorted(
            (c for c in chosen if c.confidence >= self.min_confidence), key=lambda c: (c.start, c.end)
        )

    def _drop_placeholder_records(self, data: bytes, candidates: list[Candidate]) -> list[Candidate]:
        """'Mickey' next to 'Mouse', 'John' next to 'Q. Public': a name part of a stand-in record.

        The stand-in surname silences single-word names on its own line, and on nearby lines unless
        a real identifier (an anchor of a record) is nearer to the name: the real row above a
        placeholder row in a seed file keeps its names.
        """
        if not any(c.category == "name" for c in candidates):
            return candidates
        marks = [m.start for m in self._placeholder_names.finditer(data)]
        if not marks:
            return candidates
        anchors = sorted(c.start for c in candidates if c.anchors_record and c.category != "name")
        kept = []
        for c in candidates:
            if c.category == "name" and b" " not in data[c.start : c.end].strip():
                mark = _nearest(marks, c.start)
                if mark is not None and abs(mark - c.start) <= PLACEHOLDER_WINDOW:
                    anchor = _nearest(anchors, c.start)
                    same_line = b"\n" not in data[min(mark, c.start) : max(mark, c.start)]
                    if same_line or anchor is None or abs(mark - c.start) <= abs(anchor - c.start):
                        continue
            kept.append(c)
        return kept

    def scan(
        self, text: str, *, path: str | None = None, encoded: bytes | None = None, prose: bool = False
    ) -> list[Finding]:
        """Findings in `text`; `encoded` is its UTF-8 encoding when the caller already holds it.

        `prose` adds the rules for what people write to a model (a prompt, a chat message): names
        introduced by a cue or a given name ("a reminder to Marisol Okonkwo"), dates of visits
        ("seen 03/14/2025") and dates beside them. Keep it off for files: it trades some precision
        on code for recall on prose (see detect/prose.py).

        In both modes the text is read through its detection view (invisible characters removed,
        other scripts' digits folded, percent runs and `\\u` escapes decoded: detect/normalize.py)
        and base64 that decodes to text is scanned too (detect/blobs.py); findings span the text as
        given.
        """
        return self._scan(Text(text, encoded), path, prose, 0)

    def _scan(self, text: Text, path: str | None, prose: bool, depth: int) -> list[Finding]:
        chosen = self.decide(text, self.candidates(text, path, prose=prose))
        found = self.findings(text, chosen, path)
        if depth < _MAX_DECODING_DEPTH:
            encoded = blobs.find(text.data)
            if encoded:
                found = _apart(text, found + self._decoded_findings(text, encoded, path, prose, depth))
        return found

    def _decoded_findings(
        self, text: Text, encoded: list[blobs.Blob], path: str | None, prose: bool, depth: int
    ) -> list[Finding]:
        """Findings in the text of base64 blobs, over the base64 characters that encode them.

        The blobs' texts are scanned together, apart as files are (one engine call for all), with
        the mode of the text that holds them.
        """
        joined = _BLOB_SEPARATOR.join(b.text for b in encoded)
        starts = list(
            itertools.accumulate((len(b.text) + len(_BLOB_SEPARATOR) for b in encoded[:-1]), initial=0)
        )
        inner = self._scan(Text(joined), None, prose, depth + 1)
        spans = []
        for f in inner:
            index = bisect.bisect_right(starts, f.start) - 1
            blob, base = encoded[index], starts[index]
            start, end = f.start - base, min(f.end - base, len(blob.text))
            head = len(blob.text[:start].encode("utf-8", "surrogatepass"))
            body = len(blob.text[start:end].encode("utf-8", "surrogatepass"))
            spans.append(blob.encoded_span(head, head + body))
        out = []
        for f, (start, end) in zip(inner, text.char_spans(spans), strict=True):
            line, column = text.position(start)
            end_line, end_column = text.position(end)
            value = joined[f.start : f.end]
            out.append(
                dataclasses.replace(
                    f,
                    path=path,
                    start=start,
                    end=end,
                    line=line,
                    column=column,
                    end_line=end_line,
                    end_column=end_column,
                    fingerprint=fingerprint(self.salt, f.category, path, value),
                )
            )
        return out

    def findings(self, text: Text, chosen: list[Candidate], path: str | None) -> list[Finding]:
        spans = text.char_spans([(c.start, c.end) for c in chosen])
        out = []
        for c, (start, end) in zip(chosen, spans, strict=True):
            value = text.value((c.start, c.end), (start, end))
            line, column = text.position(start)
            end_line, end_column = text.position(end)
            out.append(
                Finding(
                    path=path,
                    start=start,
                    end=end,
                    line=line,
                    column=column,
                    end_line=end_line,
                    end_column=end_column,
                    category=c.category,
                    rule=c.rule,
                    confidence=round(c.confidence, 2),
                    preview=mask(c.category, value),
                    fingerprint=fingerprint(self.salt, c.category, path, value),
                )
            )
        return out


def _apart(text: Text, findings: list[Finding]) -> list[Finding]:
    """Findings in text order, none overlapping: two values of one blob may share a base64 group,
    which goes to the first (the masks of both cover it)."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if not out or f.start >= out[-1].end:
            out.append(f)
        elif f.end > out[-1].end:
            line, column = text.position(out[-1].end)
            out.append(dataclasses.replace(f, start=out[-1].end, line=line, column=column))
    return out


def _custom_check(detector: Detector) -> CustomCheck:
    pattern = compile_pattern(detector.pattern, ignore_case=detector.ignore_case)
    value_group = pattern.group_index.get("value", 0)

    def check(raw: str, quoted: bool, kind: str) -> ValueSpan | None:
        stripped = raw.strip() if quoted else (raw.split() or [""])[0].rstrip(",;")
        lead = raw.find(stripped)
        encoded = stripped.encode("utf-8", "surrogatepass")
        m = pattern.search(encoded)
        if m is None or (quoted and (m.start != 0 or m.end != len(encoded))):
            return None
        start, end = m.group_span(value_group)
        value = encoded[start:end].decode("utf-8", "surrogatepass")
        if not detector.accept(value):
            return None
        char_start = lead + len(encoded[:start].decode("utf-8", "surrogatepass"))
        return ValueSpan(char_start, char_start + len(value))

    return check


def _nearest(sorted_positions: list[int], position: int) -> int | None:
    index = bisect.bisect_left(sorted_positions, position)
    around = sorted_positions[max(0, index - 1) : index + 1]
    return min(around, key=lambda p: abs(p - position)) if around else None


class _Spans:
    """Spans that may overlap each other, asked whether any overlaps a candidate in O(log n)."""

    def __init__(self, candidates: list[Candidate]) -> None:
        ordered = sorted((c.start, c.end) for c in candidates)
        self._starts = [start for start, _ in ordered]
        # The furthest end among the spans that start at or before each one.
        self._reach = list(itertools.accumulate((end for _, end in ordered), max))

    def overlaps(self, candidate: Candidate) -> bool:
        before_end = bisect.bisect_left(self._starts, candidate.end)
        return before_end > 0 and self._reach[before_end - 1] > candidate.start


def _apply_record_context(candidates: list[Candidate]) -> None:
    """Weak values next to strong PHI belong to the same patient record and are raised.

    A name in prose is raised by an identifier, a date of birth or a field value, not by another
    name in prose: in a list of credits ("patches by …") one name would raise all the others.
    """
    anchors = sorted(c.start for c in candidates if c.anchors_record)
    if not anchors:
        return
    beyond_prose = sorted(c.start for c in candidates if c.anchors_record and c.rule != PROSE_NAME)
    for c in candidates:
        if c.anchors_record or c.category == "secret" or c.confidence >= 0.75:
            continue
        near = beyond_prose if c.rule == PROSE_NAME else anchors
        index = bisect.bisect_left(near, c.start - RECORD_WINDOW)
        if index < len(near) and near[index] <= c.end + RECORD_WINDOW:
            c.confidence = min(RECORD_CEILING, c.confidence + RECORD_BOOST)


# The ZIP code that ends an address: "…, San Diego, CA 92151", "…, Portland OR 97217-1234".
_TRAILING_ZIP = compile_pattern(r"[, ]+(?P<zip>[0-9]{5}(?:-[0-9]{4})?)$")


def _zip_codes_apart(data: bytes, candidates: list[Candidate], *, keep_zip: bool) -> list[Candidate]:
    """An address's trailing ZIP code as a finding of its own (dropped when the policy disables zip).

    Safe Harbor treats the ZIP apart from the street (its first three digits may be kept), and a
    report that names both tells the reader what each part of the line is.
    """
    out = []
    for c in candidates:
        # On the address alone: RE2's `$` is the end of the text it is given, not of a range.
        m = _TRAILING_ZIP.search(data[c.start : c.end]) if c.category == "address" else None
        if m is None or m.start == 0:
            out.append(c)
            continue
        zip_start, zip_end = m.group_span(_TRAILING_ZIP.group_index["zip"])
        out.append(dataclasses.replace(c, end=c.start + m.start))
        if keep_zip:
            out.append(
                dataclasses.replace(
                    c, start=c.start + zip_start, end=c.start + zip_end, category="zip", rule=c.rule + ".zip"
                )
            )
    return out


def _resolve_overlaps(candidates: list[Candidate]) -> list[Candidate]:
    """Keep the most confident of overlapping candidates (the longer one on a tie, then the one a
    field name vouches for), in text order.

    Candidates are first cut into runs that overlap one another: a choice in one run never depends
    on another, so the ranking works on a few candidates at a time, not on a whole large file.
    """
    chosen: list[Candidate] = []
    for run in _overlapping_runs(candidates):
        chosen += _most_confident(run) if len(run) > 1 else run
    return chosen


def _overlapping_runs(candidates: list[Candidate]) -> Iterator[list[Candidate]]:
    run: list[Candidate] = []
    reach = 0
    for c in sorted(candidates, key=lambda c: (c.start, c.end)):
        if run and c.start >= reach:
            yield run
            run = []
        reach = max(reach, c.end) if run else c.end
        run.append(c)
    if run:
        yield run


def _most_confident(candidates: list[Candidate]) -> list[Candidate]:
    ranked = sorted(candidates, key=lambda c: (-c.confidence, -(c.end - c.start), not c.named, c.start))
    starts: list[int] = []
    chosen: list[Candidate] = []
    for c in ranked:
        index = bisect.bisect_left(starts, c.start)
        if index > 0 and chosen[index - 1].end > c.start:
            continue
        if index < len(chosen) and chosen[index].start < c.end:
            continue
        starts.insert(index, c.start)
        chosen.insert(index, c)
    return chosen


_PROPAGATE = frozenset({"name", "ssn", "mrn", "phone", "fax", "email", "health_plan", "account", "license",
                        "vehicle", "device", "other_id", "date", "ip"})  # fmt: skip


def _propagate(data: bytes, chosen: list[Candidate], threshold: float) -> list[Candidate]:
    """Other occurrences of a value already found (`assertEquals("04881932", …)` after the record)."""
    values: dict[bytes, Candidate] = {}
    for c in chosen:
        if c.category not in _PROPAGATE or c.confidence < threshold:
            continue
        value = data[c.start : c.end]
        if len(value) < 5 or (c.category == "name" and b" " not in value.strip()):
            continue
        # Short numbers recur by chance in a large file (codes, counts): only longer ones are a trail.
        if value.isdigit() and len(value) < _MIN_PROPAGATED_DIGITS:
            continue
        if c.category == "date" and len(value) < 8:
            continue
        values.setdefault(value, c)
        if len(values) > _MAX_PROPAGATED_VALUES:
            return []
    if not values:
        return []
    pattern = compile_pattern(literal_alternation([v.decode("utf-8", "surrogatepass") for v in values]))
    taken = sorted((c.start, c.end) for c in chosen)
    extra = []
    for m in pattern.finditer(data):
        start, end = m.start, m.end
        before = data[start - 1 : start]
        after = data[end : end + 1]
        if (before.isalnum() or before == b"_") or (after.isalnum() or after == b"_"):
            continue
        index = bisect.bisect_right(taken, (start, end))
        if (index > 0 and taken[index - 1][1] > start) or (index < len(taken) and taken[index][0] < end):
            continue
        source = values[data[start:end]]
        extra.append(Candidate(start, end, source.category, source.rule, PROPAGATED_CONFIDENCE))
    return extra


def _apply_pragmas(data: bytes, chosen: list[Candidate]) -> list[Candidate]:
    """`phiwarden: allow [categories]` silences its own line; `allow-next-line` the line after."""
    if b"phiwarden:" not in data:
        return chosen
    # One entry per silenced line (lines do not overlap), looked up by bisection: a text with a
    # pragma on every line costs time linear in its findings, not their product with the pragmas.
    lines: dict[tuple[int, int], list[frozenset[str]]] = {}
    index = _PRAGMA.group_index
    own_start = own_end = -1
    for m in _PRAGMA.finditer(data):
        # Pragmas come in order: one on the line of the previous one shares its bounds, so a long
        # line of pragmas is searched for its line breaks once.
        if m.start > own_end:
            own_start = data.rfind(b"\n", 0, m.start) + 1
            own_end = data.find(b"\n", m.end)
            own_end = len(data) if own_end < 0 else own_end
        line_start, line_end = own_start, own_end
        if data[slice(*m.group_span(index["kind"]))] == b"allow-next-line":
            line_start = line_end + 1
            next_end = data.find(b"\n", line_start)
            line_end = len(data) if next_end < 0 else next_end
        cats_span = m.group_span(index["cats"])
        categories = (
            frozenset(c.strip() for c in data[slice(*cats_span)].decode().split(","))
            if cats_span[0] >= 0
            else frozenset()
        )
        lines.setdefault((line_start, line_end), []).append(categories)
    spans = sorted(lines)
    starts = [start for start, _ in spans]

    def allowed(c: Candidate) -> bool:
        index = bisect.bisect_right(starts, c.start) - 1
        if index < 0 or c.start > spans[index][1]:
            return False
        return any(not cats or c.category in cats for cats in lines[spans[index]])

    return [c for c in chosen if not allowed(c)]


def engine_for(policy: Policy) -> Engine:
    """The engine for a policy's detection settings, compiled once per process and reused."""
    return _engine(policy.detection)


@functools.lru_cache(maxsize=8)
def _engine(settings: DetectionSettings) -> Engine:
    return Engine(settings)


def scan_text(
    text: str,
    *,
    path: str | os.PathLike[str] | None = None,
    policy: Policy | None = None,
    prose: bool = False,
) -> list[Finding]:
    """Find PHI and secrets in `text`. Offsets are code points of `text`; values are never returned.

    `prose=True` for what people write to a model (prompts, chat), not for files (`Engine.scan`)."""
    engine = engine_for(policy if policy is not None else Policy())
    return engine.scan(text, path=None if path is None else os.fspath(path), prose=prose)
