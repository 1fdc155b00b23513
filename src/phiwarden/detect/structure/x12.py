"""ASC X12 health care transactions (837 claims, 834 enrollment, 270/271 eligibility, 835 remittance).

A transaction is a run of segments (`NM1*IL*1*DOE*JOHN~`): the segment id, then elements split by
the element separator. Who a segment describes depends on the loop it sits in, which X12 marks only
by the `NM1` that opens it: the street in an `N3` after `NM1*IL` is the subscriber's, after
`NM1*85` the billing provider's. So the parser keeps the entity of the last `NM1` and reports
address, contact and reference segments only inside a patient's loop. Element meanings follow the
005010 implementation guides.
"""

from __future__ import annotations

from collections.abc import Iterator

from phiwarden.detect.fields import FieldClass
from phiwarden.detect.rx import Pattern

# A segment id at the start of a line, after a segment terminator, a quote or an escaped line break.
_SEGMENT = Pattern(
    r"(?:(?m:^)|[~\r\n\"']|\\n|\\r)[ \t]*(?P<seg>ISA|NM1|N3|N4|DMG|REF|PER|CLM|DTP|HL|SE)(?P<sep>[*])"
)
_SEGMENT_END = (b"~", b"\r", b"\n", b"\\r", b"\\n", b'"', b"'")
_MAX_SEGMENT = 1024

# NM101 entity identifier codes naming the person the transaction is about.
_PATIENT_ENTITIES = frozenset({b"IL", b"QC", b"03", b"74"})
# NM108 id qualifiers: what NM109 holds.
_NM1_IDS = {b"MI": "health_plan", b"II": "health_plan", b"34": "ssn", b"ZZ": "other_id"}
# REF01 qualifiers that identify the person wherever they appear.
_PERSON_REFS = {b"SY": "ssn", b"EA": "mrn", b"F6": "health_plan", b"1W": "health_plan", b"0F": "health_plan",
                b"23": "account", b"IG": "health_plan", b"6P": "health_plan", b"Q4": "other_id",
                b"3H": "other_id", b"ABB": "other_id", b"D3": "other_id"}  # fmt: skip
# PER communication qualifiers.
_PER_CHANNELS = {b"TE": "phone", b"HP": "phone", b"WP": "phone", b"CP": "phone", b"EX": "",
                 b"FX": "fax", b"EM": "email"}  # fmt: skip


def _field(category: str, kind: str = "") -> FieldClass:
    return FieldClass(category, "strong", kind, f"x12.{category}")


_NAME = _field("name")
_STREET = _field("address", "street")
_PLACE = _field("address", "place")
_ZIP = _field("zip")
_BIRTH = _field("date", "birth")
_EVENT = _field("date", "event")
_ACCOUNT = _field("account")


def _segment_end(data: bytes, start: int) -> int:
    end = min(len(data), start + _MAX_SEGMENT)
    for marker in _SEGMENT_END:
        found = data.find(marker, start, end)
        if found >= 0:
            end = found
    return end


def _elements(data: bytes, start: int, end: int, sep: bytes) -> list[tuple[bytes, int]]:
    """(element, byte offset) for each element of the segment body `data[start:end]`."""
    out = []
    offset = start
    for element in data[start:end].split(sep):
        out.append((element, offset))
        offset += len(element) + 1
    return out


def iter_fields(data: bytes) -> Iterator[tuple[FieldClass, bytes, int]]:
    """(meaning, value, byte offset) for each PHI-bearing X12 element."""
    in_patient_loop = False
    seen_patient = False
    index = _SEGMENT.group_index
    for m in _SEGMENT.finditer(data):
        seg_start, seg_end = m.group_span(index["seg"])
        segment = data[seg_start:seg_end]
        sep = data[seg_end : seg_end + 1]
        body = _elements(data, seg_end + 1, _segment_end(data, seg_end + 1), sep)
        if segment == b"NM1":
            in_patient_loop = bool(body) and body[0][0] in _PATIENT_ENTITIES
            seen_patient = seen_patient or in_patient_loop
            if in_patient_loop:
                yield from _person_name(body)
        elif segment in (b"HL", b"SE", b"ISA"):
            in_patient_loop = False
        elif segment == b"DMG":
            yield from _dates(body, 1, _BIRTH)
        elif segment == b"REF":
            yield from _reference(body)
        elif segment == b"CLM":
            # CLM01 is the patient control number: the provider's account number for the patient.
            if body and body[0][0]:
                yield _ACCOUNT, body[0][0], body[0][1]
        elif segment == b"DTP" and seen_patient:
            yield from _dates(body, 2, _EVENT)
        elif in_patient_loop and segment == b"N3":
            yield from ((_STREET, value, offset) for value, offset in body[:2] if value)
        elif in_patient_loop and segment == b"N4":
            yield from _place(body)
        elif in_patient_loop and segment == b"PER":
            yield from _contact(body)


def _person_name(body: list[tuple[bytes, int]]) -> Iterator[tuple[FieldClass, bytes, int]]:
    # NM103 last, NM104 first, NM105 middle; NM108 qualifies the id in NM109.
    for value, offset in body[2:5]:
        if value:
            yield _NAME, value, offset
    if len(body) > 8 and body[8][0]:
        category = _NM1_IDS.get(body[7][0], "other_id")
        yield _field(category), body[8][0], body[8][1]


def _dates(
    body: list[tuple[bytes, int]], value_index: int, meaning: FieldClass
) -> Iterator[tuple[FieldClass, bytes, int]]:
    # D8 is one CCYYMMDD date, RD8 a range written CCYYMMDD-CCYYMMDD.
    if len(body) <= value_index:
        return
    qualifier = body[value_index - 1][0]
    value, offset = body[value_index]
    if qualifier == b"D8":
        yield meaning, value, offset
    elif qualifier == b"RD8":
        first, _, last = value.partition(b"-")
        yield meaning, first, offset
        if last:
            yield meaning, last, offset + len(first) + 1


def _reference(body: list[tuple[bytes, int]]) -> Iterator[tuple[FieldClass, bytes, int]]:
    if len(body) > 1 and body[1][0]:
        category = _PERSON_REFS.get(body[0][0])
        if category is not None:
            yield _field(category), body[1][0], body[1][1]


def _place(body: list[tuple[bytes, int]]) -> Iterator[tuple[FieldClass, bytes, int]]:
    # N401 city, N402 state, N403 postal code.
    if body and body[0][0]:
        yield _PLACE, body[0][0], body[0][1]
    if len(body) > 2 and body[2][0]:
        yield _ZIP, body[2][0], body[2][1]


def _contact(body: list[tuple[bytes, int]]) -> Iterator[tuple[FieldClass, bytes, int]]:
    # PER02 is the contact's name, then (qualifier, number) pairs from PER03.
    if len(body) > 1 and body[1][0]:
        yield _NAME, body[1][0], body[1][1]
    for position in range(2, len(body) - 1, 2):
        channel = _PER_CHANNELS.get(body[position][0])
        value, offset = body[position + 1]
        if channel and value:
            yield _field(channel), value, offset
