"""Encoded text: percent-encoded runs, `\\uXXXX` escapes and base64 that decodes to text.

Findings are read in the decoded text and reported over the encoded characters; previews mask the
decoded value.
"""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phiwarden.detect import scan_text
from phiwarden.detect.blobs import find
from phiwarden.detect.normalize import _valid_utf8_parts
from phiwarden.detect.text import Text

RECORD = "Patient: Marisol Okonkwo SSN 518-42-7731 MRN-00482913"
HL7 = (
    "MSH|^~\\&|EPIC|HOSP|||202501011200||ADT^A01|1|P|2.5\r"
    "PID|1||00482913^^^HOSP^MR||OKONKWO^MARISOL||19610314|F|||14 ELM ST^^BOSTON^MA^02118||||||||518-42-7731"
)


def found(text: str, *, prose: bool = False) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in scan_text(text, prose=prose)]


def categories(text: str, *, prose: bool = False) -> set[str]:
    return {f.category for f in scan_text(text, prose=prose)}


# --- percent-encoded runs ----------------------------------------------------------------------------


@pytest.mark.parametrize("prose", [False, True])
def test_percent_encoded_values_are_found_over_their_escapes(prose: bool) -> None:
    text = "curl 'https://ehr.example.org/api?q=SSN%20518-42-7731' fails"
    assert ("ssn", "518-42-7731") in found(text, prose=prose)
    text = "GET /api?filter=ssn%3D518427731 500"
    assert found(text, prose=prose) == [("ssn", "518427731")]


def test_a_fully_encoded_record_maps_each_value_to_its_own_escapes() -> None:
    encoded = urllib.parse.quote(RECORD, safe="")
    text = f"data:text/plain,{encoded}"
    assert found(text) == [
        ("name", urllib.parse.quote("Marisol Okonkwo", safe="")),
        ("ssn", "518-42-7731"),
        ("mrn", "MRN-00482913"),
    ]
    every_byte = "".join(f"%{b:02X}" for b in b"SSN 518-42-7731")
    assert found(f"q={every_byte}") == [("ssn", every_byte[12:])]


def test_percent_encoded_utf8_is_decoded_and_previewed_decoded() -> None:
    text = "?patient_name=Jos%C3%A9%20N%C3%BA%C3%B1ez&dob=1961-03-14"
    findings = scan_text(text)
    assert (findings[0].category, text[findings[0].start : findings[0].end]) == (
        "name",
        "Jos%C3%A9%20N%C3%BA%C3%B1ez",
    )
    assert findings[0].preview == "J*** N****"


def test_a_name_folder_in_an_encoded_url_path_is_found_in_prose() -> None:
    text = "https://pacs.example.org/images/Okonkwo%20Marisol/chest-xray.png"
    assert found(text, prose=True) == [("name", "Okonkwo%20Marisol")]


@pytest.mark.parametrize(
    "text",
    [
        'printf("%2d items, %3d left, %20s", n, m, s)',  # printf formats are no URL escapes
        "50% off, 100%ABC, %zz",
        "SELECT * FROM t WHERE name LIKE '%An%'",
        "q=%FF%FE%00",  # bytes that are no UTF-8 text
    ],
)
def test_percent_signs_that_encode_nothing_are_left_alone(text: str) -> None:
    assert found(text) == []


def test_invalid_escapes_do_not_hide_the_valid_ones_after_them() -> None:
    text = "q=%FF%FESSN%20518-42-7731"
    assert found(text) == [("ssn", "518-42-7731")]


def _valid_parts_reference(raw: bytes) -> list[tuple[int, int]]:
    """The valid UTF-8 runs of `raw` as (start, end), found one character at a time."""
    runs: list[tuple[int, int]] = []
    pos = 0
    while pos < len(raw):
        end = pos
        while end < len(raw):
            for width in (1, 2, 3, 4):
                try:
                    raw[end : end + width].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                end += width
                break
            else:
                break
        if end > pos:
            runs.append((pos, end))
        pos = max(end, pos + 1)
        while pos < len(raw) and 0x80 <= raw[pos] < 0xC0:
            pos += 1
    return runs


@given(
    st.lists(
        st.sampled_from([b"a", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xff", b"\x80", b"\xc3"]),
        max_size=200,
    )
)
def test_valid_utf8_runs_of_decoded_escapes_match_a_character_by_character_reading(
    pieces: list[bytes],
) -> None:
    """Decoding is done a window at a time (64 bytes, doubling): characters cut by a window's edge."""
    raw = b"".join(pieces) * 3
    edits = _valid_utf8_parts(raw, 0)
    assert [(e.start // 3, e.end // 3) for e in edits] == _valid_parts_reference(raw)
    assert all(e.replacement == raw[e.start // 3 : e.end // 3] for e in edits)


def test_alternating_valid_and_invalid_escapes_take_linear_time() -> None:
    """`%FF%41` repeated: every other byte invalid (it once cost the square of its length)."""
    text = "%FF%41" * 100_000
    assert found(text) == []
    raw = bytes.fromhex("ff41" * 100_000)
    assert len(_valid_utf8_parts(raw, 0)) == 100_000


# --- \uXXXX escapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prose", [False, True])
def test_json_escapes_are_read_as_the_characters_they_stand_for(prose: bool) -> None:
    record = {"patient_name": "José Núñez", "dob": "1961-03-14", "ssn": "518-42-7731"}
    text = json.dumps(record, indent=2)  # json.dumps escapes every non-ASCII character by default
    assert "\\u00e9" in text
    assert found(text, prose=prose) == [
        ("name", "Jos\\u00e9 N\\u00fa\\u00f1ez"),
        ("date", "1961-03-14"),
        ("ssn", "518-42-7731"),
    ]
    assert scan_text(text, prose=prose)[0].preview == "J*** N****"


def test_escaped_digits_are_found() -> None:
    text = '{"ssn": "\\u0035\\u0031\\u0038-\\u0034\\u0032-\\u0037\\u0037\\u0033\\u0031"}'
    assert categories(text) == {"ssn"}
    assert scan_text(text)[0].preview == "***-**-7731"


def test_surrogate_pairs_and_escaped_backslashes() -> None:
    # An escaped backslash before "u" is no escape; a pair is one character.
    assert found('{"ssn": "\\\\u0035\\\\u0031\\\\u0038-42-7731"}') == []
    assert found('"note": "\\ud83d\\ude00", "ssn": "518-42-7731"') == [("ssn", "518-42-7731")]


def test_escapes_of_quotes_and_controls_keep_the_string_whole() -> None:
    text = '{"first_name": "Ana\\u0022", "ssn": "518-42-7731"}'
    assert ("ssn", "518-42-7731") in found(text)


# --- base64 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prose", [False, True])
def test_base64_of_a_phi_line_is_found_over_its_base64(prose: bool) -> None:
    blob = base64.b64encode(RECORD.encode()).decode()
    text = f"Can you decode this for me? {blob}"
    findings = scan_text(text, prose=prose)
    assert {f.category for f in findings} == {"name", "ssn", "mrn"}
    start = text.index(blob)
    assert all(start <= f.start < f.end <= start + len(blob) for f in findings)
    # Each value's span is the whole base64 groups that encode it.
    ssn = next(f for f in findings if f.category == "ssn")
    assert base64.b64decode(text[ssn.start : ssn.end]).decode().count("518-42-7731") == 1
    assert ssn.preview == "***-**-7731"
    # Its fingerprint is the decoded value's, as the plain value's is.
    plain = next(f for f in scan_text(RECORD, prose=prose) if f.category == "ssn")
    assert ssn.fingerprint == plain.fingerprint


def test_base64_of_an_hl7_message_and_url_safe_base64_are_found() -> None:
    hl7 = base64.b64encode(HL7.encode()).decode()
    assert {"name", "ssn", "mrn", "date"} <= categories(f"Summarize this HL7 message: {hl7}")
    url_safe = base64.urlsafe_b64encode(RECORD.encode()).decode().rstrip("=")
    assert categories(url_safe) == {"name", "ssn", "mrn"}


def test_wrapped_base64_is_joined_across_its_lines() -> None:
    blob = base64.encodebytes(HL7.encode()).decode()  # 76 characters a line, as MIME writes it
    assert blob.count("\n") > 2
    text = f"tool output:\n{blob}"
    findings = scan_text(text)
    assert {"name", "ssn"} <= {f.category for f in findings}
    ssn = next(f for f in findings if f.category == "ssn")
    assert base64.b64decode(text[ssn.start : ssn.end]).decode().endswith("518-42-7731")


def test_base64_inside_decoded_base64_is_decoded_too() -> None:
    inner = base64.b64encode(RECORD.encode())
    outer = base64.b64encode(b"payload=" + inner).decode()
    assert categories(outer) == {"name", "ssn", "mrn"}


@pytest.mark.parametrize(
    "text",
    [
        # Binary: a PNG header, random key material.
        base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))).decode(),
        base64.b64encode(bytes((i * 97 + 13) % 256 for i in range(96))).decode(),
        # Runs that are no base64 of text: hashes, identifiers, numbers, paths.
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "sha256-4f7a1b2c9d0e8f6a5b3c7d1e9f0a2b4c6d8e0f1a3b5c7d9e",
        "PatientRepositoryImplementationFactory2",
        "/usr/lib/python3.11/site-packages/Django/contrib/admin",
        "0651456337977727 and 12345678901234567890",
        # Base64 of text without PHI.
        base64.b64encode(b"Hello world, this is only a test of the build pipeline").decode(),
    ],
)
def test_base64_without_phi_and_binary_are_left_alone(text: str) -> None:
    assert found(text) == []


def test_only_runs_that_decode_to_text_are_decoded() -> None:
    text_blob = base64.b64encode(b"a line of text, plain and simple").decode()
    binary = base64.b64encode(bytes(range(200, 248))).decode()
    mixed_alphabets = text_blob[:8] + "-_" + text_blob[10:]
    blobs = find(f"{text_blob} {binary} {mixed_alphabets} abcdefghijklmnopqrstuvwxyz".encode())
    assert [b.text for b in blobs] == ["a line of text, plain and simple"]


# --- the view and its way back ------------------------------------------------------------------------


def test_view_spans_map_back_to_the_characters_they_were_read_from() -> None:
    text = "a\u200bb %41%42 \\u0043 \u0665\u0301"
    view = Text(text)
    assert view.data == b"ab AB C 5"
    spans = {"ab": (0, 2), "b": (1, 2), "A": (3, 4), "AB": (3, 5), "C": (6, 7), "5": (8, 9)}
    mapped = dict(zip(spans, view.char_spans(list(spans.values())), strict=True))
    assert {k: text[s:e] for k, (s, e) in mapped.items()} == {
        "ab": "a\u200bb",  # a removed character inside a span belongs to it
        "b": "b",  # and one before it does not
        "A": "%41",  # a percent run maps byte for byte
        "AB": "%41%42",
        "C": "\\u0043",  # an escape maps whole
        "5": "\u0665\u0301",  # a mark on the last character ends with it
    }
