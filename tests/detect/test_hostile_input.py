"""Hostile text: nothing crashes and answers stay right.

Linear running time is measured in `benchmarks/adversarial.py` (a benchmark, not a timed test); here
the same inputs must simply complete and give the expected findings.
"""

from __future__ import annotations

import base64

import pytest

from phiwarden.detect import scan_text
from phiwarden.detect.rx import PatternError, compile_pattern

ADVERSARIAL = {
    "long key run": "a" * 200_000 + ": ",
    "unterminated quotes": 'dob: "' * 50_000,
    "escaped quotes": 'name: "\\"' * 50_000,
    "digits": "1" * 300_000,
    "dashes and digits": "123-" * 80_000,
    "nested json": "{" * 100_000 + "}" * 100_000,
    "capital words": "Ab " * 100_000,
    "pairs on one line": "fname=Ana, " * 40_000,
    "url without end": "https://x/" + "patients/" * 30_000,
    "at signs": "a@" * 100_000,
    "name lists": '"given": ["Ana", ' * 20_000,
    "unclosed parametrize": 'parametrize("a", [' * 20_000,
    "unclosed table tests": "[]struct{a int}{" * 20_000,
    "unclosed inserts": "insert into patients (mrn, name, dob) values (" * 10_000,
    "unended copies": "COPY patients (mrn, name) FROM stdin;\n" * 10_000,
    "pragma per line": 'ssn = "518-42-7731"  # phiwarden: allow ssn\n' * 10_000,
    "pragmas on one line": 'ssn="518-42-7731" # phiwarden: allow ssn ; ' * 10_000,
    "provider ids beside values": 'NPI 1234567893 ssn = "518-42-7731"\n' * 10_000,
    "dense records": "patient Ana Ruiz DOB 1990-01-01 MRN 40981723 " * 10_000,
    "long name list": '"given": [' + '"Ana", ' * 50_000 + "]",
    "yaml block lists": "given:\n  - Ana\n" * 20_000,
    "bare name lists": "given: [Ana, " * 20_000,
    "erb tags": "dob: <%= Date.new(" * 20_000,
    "dated rows": 'patients = [("Ana", "Ruiz", "1984-07-19"), ' * 10_000 + "; values (" * 10_000,
    "error messages": "invalid value 'Ana' for field 'name' Key (a)=(b" * 10_000,
    "html cells": "<tr><th>name</th><td>" * 20_000,
    "unclosed creates": "create table t (a int, " * 20_000 + "insert into t values ('1984-07-19');",
    "unclosed person calls": 'Patient("Ana", "Ruiz", LocalDate.of(1984, 7, 19), ' * 10_000,
    "block dates": "dob { Date.new(" * 20_000,
    "dicom json elements": '"00100010": {"vr": "PN", "Value": [{"Alphabetic": "' * 20_000,
    "sas data steps": "input mrn $ first $ dob;\ndatalines;\n" * 20_000,
    "hl7 explicit nulls": 'IN1|""' * 50_000,
    "person calls": 'Patient::new("Ana", "Ruiz", "1984-07-19"); ' * 10_000,
    "unicode dashes": "518\u201142\u20117731 " * 30_000,
    "dash runs": "\u2013" * 300_000,
    "file name ids": "/x/Ab_Cd_518-42-7731_" * 20_000,
    "percent run": "%41" * 100_000,
    "percent invalid bytes": "%FF%41" * 50_000,
    "escape storm": "\\u00e9" * 50_000,
    "backslash run": "\\" * 300_000 + "u0041",
    "surrogate halves": "\\ud83d" * 50_000,
    "base64 text run": base64.b64encode(b"Patient Ana Ruiz SSN 518-42-7731 " * 3_000).decode(),
    "base64 binary run": base64.b64encode(bytes(range(256)) * 1_000).decode(),
    "base64 near misses": "Ab1Cd2Ef3Gh4Ij5K " * 20_000,
    "invisible storm": "5\u200d" * 100_000,
    "combining marks": "a\u0301" * 100_000,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_inputs_complete(name: str) -> None:
    findings = scan_text(ADVERSARIAL[name])
    assert isinstance(findings, list)


def test_hostile_encodings_still_give_their_values() -> None:
    assert {f.category for f in scan_text(ADVERSARIAL["base64 text run"])} >= {"ssn"}
    assert scan_text(ADVERSARIAL["base64 binary run"]) == []
    assert scan_text(ADVERSARIAL["percent run"]) == []


def test_findings_survive_next_to_garbage() -> None:
    text = "\x00\x01\ufffd" * 1000 + 'ssn = "518-42-7731"' + "\udc80\udcff" * 10 + "\n"
    found = [text[f.start : f.end] for f in scan_text(text)]
    assert found == ["518-42-7731"]


def test_long_single_line() -> None:
    line = ("x" * 1000 + " ") * 5000 + 'patient_ssn="518-42-7731"' + " tail" * 1000
    assert [line[f.start : f.end] for f in scan_text(line)] == ["518-42-7731"]


@pytest.mark.parametrize("pattern", [r"(?<=x)y", r"(a)\1", r"(?=x)", r"x{1001}"])
def test_super_linear_features_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)
