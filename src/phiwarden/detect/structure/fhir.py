"""FHIR identifiers and telecoms, and C-CDA ids: values whose meaning sits in a sibling field.

`{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "…"}` is an SSN and
`{"system": "phone", "value": "…"}` a phone number, though the key of the value is only "value".
The same holds for FHIR XML (`<system value="…"/><value value="…"/>`) and for C-CDA
`<id root="2.16.840.1.113883.4.1" extension="…"/>`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from phiwarden.detect.fields import FieldClass
from phiwarden.detect.rx import Pattern
from phiwarden.detect.vocabulary import load_data_file

_VALUE = Pattern(
    r"\"value\"\s*:\s*\"(?P<json>[^\"\\\r\n]{1,200})\""
    r"|<value\s+value=\"(?P<xml>[^\"<>]{1,200})\""
    r"|<(?:id|telecom)\b[^<>]{0,300}?\b(?:extension|value)=\"(?P<cda>[^\"<>]{1,200})\"[^<>]{0,300}>"
)
_LOOK_BACK = 700
_RESOURCE = Pattern(r"\"resourceType\"\s*:\s*\"(?P<type>[A-Za-z]{2,64})\"")
# Keys whose values are a patient's dates or device ids inside a resource about a patient.
_SCOPED = Pattern(
    r"\"(?P<key>start|end|onsetDateTime|abatementDateTime|recordedDate|performedDateTime|effectiveDateTime|"
    r"issued|authoredOn|occurrenceDateTime|date|created|serialNumber|lotNumber|deviceIdentifier|carrierHRF)\""
    r"\s*:\s*\"(?P<value>[^\"\\\r\n]{1,120})\""
)
# Resources that describe a patient's care; their dates are "dates directly related to an individual".
_PATIENT_RESOURCES = frozenset(load_data_file("fhir.toml")["patient_resources"])
_CONFORMANCE_RESOURCES = frozenset(load_data_file("fhir.toml")["conformance_resources"])
# FHIR XML names its resource by the root element: `<StructureDefinition xmlns="http://hl7.org/fhir">`.
_XML_RESOURCE = Pattern(r"<(?P<type>[A-Z][A-Za-z]{1,63})\s+xmlns=\"http://hl7\.org/fhir\"")
_DEVICE_KEYS = frozenset({b"serialNumber", b"lotNumber", b"deviceIdentifier", b"carrierHRF"})


def _field(category: str, kind: str = "") -> FieldClass:
    return FieldClass(category, "strong", kind, f"fhir.{category}")


# Identifier systems and v2-0203 type codes, checked in order against the object holding the value.
_MARKERS: tuple[tuple[bytes, FieldClass], ...] = (
    (b"us-ssn", _field("ssn")),
    (b'2.16.840.1.113883.4.1"', _field("ssn")),
    (b"us-mbi", _field("health_plan")),
    (b"us-medicare", _field("health_plan")),
    (b"us-npi", FieldClass("", "strong", "", "")),  # a provider's id: not PHI
    (b'2.16.840.1.113883.4.6"', FieldClass("", "strong", "", "")),
    (b"passport", _field("other_id")),
    (b"driver", _field("license")),
    (b"2.16.840.1.113883.4.3.", _field("license")),
    (b'"code": "MR"', _field("mrn")),
    (b'"code":"MR"', _field("mrn")),
    (b'<code value="MR"', _field("mrn")),
    (b'"code": "SS"', _field("ssn")),
    (b'"code": "MB"', _field("health_plan")),
    (b'"code": "MC"', _field("health_plan")),
    (b'"code": "MA"', _field("health_plan")),
    (b'"code": "SN"', _field("health_plan")),
    (b'"code": "DL"', _field("license")),
    (b'"code": "PPN"', _field("other_id")),
    (b'"code": "AN"', _field("account")),
    (b'"system": "phone"', _field("phone")),
    (b'"system":"phone"', _field("phone")),
    (b'<system value="phone"', _field("phone")),
    (b'"system": "fax"', _field("fax")),
    (b'<system value="fax"', _field("fax")),
    (b'"system": "email"', _field("email")),
    (b'<system value="email"', _field("email")),
    (b'"system": "sms"', _field("phone")),
    (b'"system": "url"', _field("url")),
    (b"tel:", _field("phone")),
    (b"mailto:", _field("email")),
)
_ANY_IDENTIFIER = _field("mrn")


def _enclosing(data: bytes, position: int) -> bytes:
    """The text from the start of the object (JSON or XML element) that holds `position`."""
    start = max(0, position - _LOOK_BACK)
    window = data[start:position]
    depth = 0
    for index in range(len(window) - 1, -1, -1):
        ch = window[index]
        if ch == 0x7D:  # }
            depth += 1
        elif ch == 0x7B:  # {
            if depth == 0:
                return window[index:]
            depth -= 1
    for tag in (b"<identifier", b"<telecom", b"<id ", b"<id\n"):
        found = window.rfind(tag)
        if found >= 0:
            return window[found:]
    return window[-200:]


def iter_scoped_values(data: bytes) -> Iterator[tuple[FieldClass, bytes, int]]:
    """Clinical dates and device ids, by the type of the resource they sit in."""
    resources = [(m.start, data[slice(*m.group_span(1))].decode()) for m in _RESOURCE.finditer(data)]
    if not resources:
        return
    starts = [position for position, _ in resources]
    index = _SCOPED.group_index
    for m in _SCOPED.finditer(data):
        at = bisect.bisect_right(starts, m.start) - 1
        if at < 0 or resources[at][1] not in _PATIENT_RESOURCES:
            continue
        key = data[slice(*m.group_span(index["key"]))]
        v_start, v_end = m.group_span(index["value"])
        if key in _DEVICE_KEYS:
            if resources[at][1] == "Device":
                yield _field("device"), data[v_start:v_end], v_start
            continue
        if key in (b"start", b"end") and b"eriod" not in data[max(0, m.start - 120) : m.start]:
            continue
        yield _field("date", "event"), data[v_start:v_end], v_start


def _conformance_ranges(data: bytes) -> tuple[list[int], list[bool]]:
    """Where each resource starts, and whether it is a conformance resource (sorted by start)."""
    found = [
        (m.start, data[slice(*m.group_span(1))].decode() in _CONFORMANCE_RESOURCES)
        for pattern in (_RESOURCE, _XML_RESOURCE)
        for m in pattern.finditer(data)
    ]
    found.sort()
    return [start for start, _ in found], [conformance for _, conformance in found]


def iter_values(data: bytes) -> Iterator[tuple[FieldClass, bytes, int]]:
    yield from iter_scoped_values(data)
    starts, conformance = _conformance_ranges(data)
    index = _VALUE.group_index
    for m in _VALUE.finditer(data):
        at = bisect.bisect_right(starts, m.start) - 1
        # A resource opens before its values in both JSON and XML, so the last one opened holds them.
        if at >= 0 and conformance[at]:
            continue
        for group in ("json", "xml", "cda"):
            v_start, v_end = m.group_span(index[group])
            if v_start < 0:
                continue
            value = data[v_start:v_end]
            before = data[max(0, m.start - _LOOK_BACK) : m.start]
            if group == "cda":
                context = data[m.start : m.end]
                # Every id of the patient role is the patient's, whatever the assigning authority's OID.
                inside_identifier = before.rfind(b"<patientRole") > before.rfind(b"</patientRole")
            else:
                context = _enclosing(data, v_start)
                inside_identifier = b'"identifier"' in before or b"<identifier" in context
            verdict = _classify(context, value, inside_identifier=inside_identifier, cda=group == "cda")
            if verdict is not None and verdict.category:
                yield verdict, value, v_start
            break


def _classify(context: bytes, value: bytes, *, inside_identifier: bool, cda: bool) -> FieldClass | None:
    for marker, verdict in _MARKERS:
        if marker in context or (marker in (b"tel:", b"mailto:") and value.startswith(marker)):
            return verdict
    # An identifier of unknown type on a patient is still an identifier of the patient.
    typed = (cda and context.startswith(b"<id")) or b'"system"' in context or b"<system" in context
    return _ANY_IDENTIFIER if inside_identifier and typed else None
