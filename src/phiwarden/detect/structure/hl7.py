"""HL7 v2 messages: PID, PD1, NK1, GT1, IN1, IN2, PV1 and MRG fields by position.

Segments are found wherever they appear: `.hl7` files, log lines, and string literals in test code
(where segments end with a literal `\\r`). Field meanings follow HL7 v2.5.1.
"""

from __future__ import annotations

from collections.abc import Iterator

from phiwarden.detect.fields import FieldClass
from phiwarden.detect.rx import Pattern

# A segment id at the start of a line, after a quote, or after an escaped or real segment break.
_SEGMENT = Pattern(
    r"(?:(?m:^)|[\r\n\"'+>]|\\r|\\n)[ \t]*(?P<seg>MSH|PID|PD1|NK1|GT1|IN1|IN2|PV1|MRG)(?P<sep>[|])"
)
_SEGMENT_END = (b"\r", b"\n", b"\\r", b"\\n", b'"', b"'")


def _field(category: str, kind: str = "") -> FieldClass:
    return FieldClass(category, "strong", kind, f"hl7.{category}")


# (segment, field number) -> (what it holds, which components are values of their own)
_FIELDS: dict[tuple[str, int], tuple[FieldClass, str]] = {
    ("PID", 2): (_field("mrn"), "id"),
    ("PID", 3): (_field("mrn"), "id"),
    ("PID", 4): (_field("mrn"), "id"),
    ("PID", 5): (_field("name", "hl7"), "name"),
    ("PID", 6): (_field("name", "hl7"), "name"),
    ("PID", 7): (_field("date", "birth"), "date"),
    ("PID", 9): (_field("name", "hl7"), "name"),
    ("PID", 11): (_field("address"), "address"),
    ("PID", 13): (_field("phone"), "phone"),
    ("PID", 14): (_field("phone"), "phone"),
    ("PID", 18): (_field("account"), "id"),
    ("PID", 19): (_field("ssn"), "id"),
    ("PID", 20): (_field("license"), "id"),
    ("PID", 21): (_field("other_id"), "id"),
    ("PID", 29): (_field("date", "death"), "date"),
    ("NK1", 2): (_field("name", "hl7"), "name"),
    ("NK1", 4): (_field("address"), "address"),
    ("NK1", 5): (_field("phone"), "phone"),
    ("NK1", 6): (_field("phone"), "phone"),
    ("NK1", 16): (_field("date", "birth"), "date"),
    ("NK1", 37): (_field("ssn"), "id"),
    ("GT1", 2): (_field("account"), "id"),
    ("GT1", 3): (_field("name", "hl7"), "name"),
    ("GT1", 5): (_field("address"), "address"),
    ("GT1", 6): (_field("phone"), "phone"),
    ("GT1", 7): (_field("phone"), "phone"),
    ("GT1", 8): (_field("date", "birth"), "date"),
    ("GT1", 12): (_field("ssn"), "id"),
    ("IN1", 16): (_field("name", "hl7"), "name"),
    ("IN1", 18): (_field("date", "birth"), "date"),
    ("IN1", 19): (_field("address"), "address"),
    ("IN1", 36): (_field("health_plan"), "id"),
    ("IN1", 49): (_field("health_plan"), "id"),
    ("IN2", 1): (_field("other_id"), "id"),
    ("IN2", 2): (_field("ssn"), "id"),
    ("IN2", 6): (_field("health_plan"), "id"),
    ("IN2", 8): (_field("health_plan"), "id"),
    ("PV1", 19): (_field("account"), "id"),
    ("PV1", 44): (_field("date", "event"), "date"),
    ("PV1", 45): (_field("date", "event"), "date"),
    ("MRG", 1): (_field("mrn"), "id"),
    ("MRG", 3): (_field("account"), "id"),
}
# XAD: street ^ other ^ city ^ state ^ zip ^ country ^ type ^ other geo ^ county
_ADDRESS_COMPONENTS = {
    0: _field("address", "street"),
    2: _field("address", "place"),
    4: _field("zip"),
    8: _field("address", "place"),
}
_IN1_ID = (_field("health_plan"), "id")


def _segment_end(data: bytes, start: int) -> int:
    limit = min(len(data), start + 4096)
    end = limit
    for marker in _SEGMENT_END:
        found = _find_end_marker(data, marker, start, end)
        if found >= 0:
            end = found
    return end


def _find_end_marker(data: bytes, marker: bytes, start: int, end: int) -> int:
    """Where `marker` ends the segment; `|""|` is HL7's explicit null inside it, not a closing quote
    (a few of them per segment: a run of them is read as quotes again, which keeps this bounded)."""
    found = data.find(marker, start, end)
    if marker != b'"':
        return found
    for _ in range(_MAX_NULLS):
        if found < 0 or data[found : found + 2] != b'""' or data[found - 1 : found] not in (b"|", b"^", b"~"):
            break
        found = data.find(marker, found + 2, end)
    return found


_MAX_NULLS = 16


def iter_fields(data: bytes) -> Iterator[tuple[FieldClass, bytes, int]]:
    """(meaning, value, byte offset) for each PHI-bearing HL7 field component."""
    read_to = 0
    for m in _SEGMENT.finditer(data):
        seg_start, seg_end = m.group_span(_SEGMENT.group_index["seg"])
        # Segments do not nest: a segment id inside the segment just read is one of its values.
        if seg_start < read_to:
            continue
        segment = data[seg_start:seg_end].decode()
        body_start = seg_end + 1
        end = read_to = _segment_end(data, body_start)
        offset = body_start
        # MSH-1 is the field separator itself, so MSH field numbers are one off; MSH holds no PHI.
        if segment == "MSH":
            continue
        for number, field in enumerate(data[body_start:end].split(b"|"), start=1):
            meaning = _FIELDS.get((segment, number))
            # Senders disagree on IN1 positions past the payer fields; every id there is the insured's.
            if meaning is None and segment == "IN1" and number >= 5:
                meaning = _IN1_ID
            if meaning is not None and field:
                yield from _components(meaning, field, offset)
            offset += len(field) + 1


def _components(
    meaning: tuple[FieldClass, str], field: bytes, offset: int
) -> Iterator[tuple[FieldClass, bytes, int]]:
    verdict, shape = meaning
    # Repetitions (~) hold further values of the same field.
    for repetition in field.split(b"~"):
        components = repetition.split(b"^")
        if shape == "name":
            # XPN: family ^ given ^ middle — reported as one name, as it is written.
            name_end = sum(len(c) + 1 for c in components[:3]) - 1
            value = repetition[:name_end].rstrip(b"^")
            if value:
                yield verdict, value, offset
        elif shape == "address":
            position = offset
            for index, component in enumerate(components):
                part = _ADDRESS_COMPONENTS.get(index)
                if part is not None and component:
                    yield part, component, position
                position += len(component) + 1
        elif shape == "date":
            if components[0]:
                yield verdict, components[0], offset
        elif components[0]:
            # CX / XTN: the id or number is the first component.
            yield verdict, components[0], offset
        offset += len(repetition) + 1
