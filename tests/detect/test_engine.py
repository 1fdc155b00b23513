"""The engine's deciding steps: placeholders, record context, offsets, pragmas, previews."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from phiwarden.detect import scan_text
from phiwarden.detect.registry import Detector, PatternSet
from tests.helpers import covered, found, values


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "John Doe", "dob": "1970-01-01", "ssn": "000-00-0000", "mrn": "TEST-MRN-001"}',
        "patient_name: 'MOUSE, MICKEY'\nmrn: MRN-XXXXXX\nphone: 555-555-5555\nzip: 12345",
        "INSERT INTO patients (mrn, first_name, last_name) VALUES ('00000000', 'John', 'Q. Public');",
        '{"email": "someone@example.com", "address": "123 Main Street", "city": "Anytown"}',
        '{"vin": "1HGCM82633A004352", "mbi": "1EG4-TE5-MK73", "udi": "(01)00000000000000(17)000000(10)LOT"}',
        "first_name = 'Jane'\nlast_name = 'Doe'\ndob = '1900-01-01'",
    ],
)
def test_placeholders_are_not_phi(text: str) -> None:
    assert [f for f in found(text) if f[0] != "secret"] == []


def test_a_name_next_to_dob_and_mrn_is_a_record() -> None:
    record = '{"mrn": "MRN-40981723", "name": "Lena Fischer", "city": "Portland", "dob": "1979-03-02"}'
    assert covered(record, "Lena Fischer")
    assert covered(record, "Portland")
    # The same generic fields alone describe a package, a build or a place, not a patient.
    alone = '{"name": "Lena Fischer", "city": "Portland"}'
    assert found(alone) == []


def test_single_word_names_need_a_record() -> None:
    assert found('first_name = "Lock"') == []
    assert values('mrn = "MRN-40981723"\nfirst_name = "Min"\nlast_name = "West"', "name") == ["Min", "West"]


def test_values_found_once_are_found_everywhere_in_the_file() -> None:
    text = 'PID|1||40981723^^^ACME^MR||DOE^ANA\nassertEquals("40981723", msg.mrn());\n'
    assert [v for c, v in found(text) if c == "mrn"] == ["40981723", "40981723"]


def test_short_numbers_are_not_followed_through_the_file() -> None:
    text = 'tin = "10067"\nCODES = {"Aluminum": [10006, 10067], "Iron": [10067]}\n'
    assert values(text, "other_id") == ["10067"]


def test_offsets_are_code_points_with_crlf_and_non_ascii() -> None:
    text = 'título: ñ\r\nnombre: "Zoë Ñúñez"\r\n{"mrn": "MRN-40981723", "dob": "1979-03-02"}\r\n'
    for finding in scan_text(text):
        value = text[finding.start : finding.end]
        assert value in ("Zoë Ñúñez", "MRN-40981723", "1979-03-02")
        line_start = text.rfind("\n", 0, finding.start) + 1
        assert finding.line == text.count("\n", 0, finding.start) + 1
        assert finding.column == finding.start - line_start + 1
        assert finding.end_column == finding.column + len(value)


def test_pragmas_silence_a_line_or_the_next() -> None:
    text = (
        'ssn = "518-42-7731"  # phiwarden: allow\n'
        'other = "518-42-7732"  # phiwarden: allow mrn\n'
        "// phiwarden: allow-next-line ssn\n"
        'third = "518-42-7733"\n'
        'fourth = "518-42-7734"\n'
    )
    assert values(text, "ssn") == ["518-42-7732", "518-42-7734"]


def test_previews_never_show_the_value() -> None:
    text = (
        '{"mrn": "MRN-40981723", "name": "Lena Fischer", "ssn": "518-42-7731", "email": "lena.f79@gmail.com"}'
    )
    for finding in scan_text(text):
        value = text[finding.start : finding.end]
        assert value not in finding.preview
        assert len(finding.preview) >= 3
    previews = {text[f.start : f.end]: f.preview for f in scan_text(text)}
    assert previews["Lena Fischer"] == "L*** F******"
    assert previews["518-42-7731"] == "***-**-7731"


def test_fingerprints_are_keyed_and_stable() -> None:
    from phiwarden.detect.finding import fingerprint

    a = fingerprint(b"salt-a", "ssn", "f.py", "518-42-7731")
    assert a == fingerprint(b"salt-a", "ssn", "f.py", "518-42-7731")
    assert a != fingerprint(b"salt-b", "ssn", "f.py", "518-42-7731")
    assert "5184" not in a
    moved = scan_text('\n\nssn = "518-42-7731"', path="f.py")[0].fingerprint
    assert moved == scan_text('ssn = "518-42-7731"', path="f.py")[0].fingerprint


def test_library_api_takes_a_policy() -> None:
    from phiwarden.policy import parse_policy

    text = 'mrn = "MRN-40981723"\nssn = "518-42-7731"\nnote: 518-42-7732'
    assert values(text, "ssn") == ["518-42-7731", "518-42-7732"]
    strict = parse_policy("[detection]\nmin_confidence = 0.99\n")
    assert found(text, policy=strict) == []
    no_ssn = parse_policy('[detection]\ndisable = ["ssn"]\n')
    assert [c for c, _ in found(text, policy=no_ssn)] == ["mrn"]
    no_rule = parse_policy('[detection]\ndisable = ["ssn.formatted"]\n')
    assert values(text, "ssn", policy=no_rule) == ["518-42-7731"]


def test_a_placeholder_row_does_not_silence_the_real_row_above() -> None:
    text = (
        "INSERT INTO patients (mrn, first_name, last_name) VALUES\n"
        "  ('MRN-55120987', 'Haruto', 'Nakamura'),\n"
        "  ('MRN-XXXXXX', 'Jane', 'Doe');\n"
    )
    assert values(text, "name") == ["Haruto", "Nakamura"]


def test_a_rejected_branch_does_not_hide_a_later_detector_at_the_same_place() -> None:
    def detector(number: int, pattern: str, check: Callable[[str], bool]) -> Detector:
        return Detector(
            id=f"test.d{number}", category="other_id", pattern=pattern, stage="one", checks=(check,)
        )

    stage = PatternSet(
        [
            detector(1, r"\bAB\d+", lambda value: False),  # matches first, always rejected
            detector(2, r"\bAB\d{3}", lambda value: value.endswith("7")),  # rejected here too
            detector(3, r"\bAB\d{2}", lambda value: True),
        ]
    )
    found_rules = [(c.rule, c.start, c.end) for c in stage.candidates(b"id AB1237 and AB9")]
    assert found_rules == [("test.d3", 3, 7)]


def test_a_field_name_decides_the_category_of_a_value_a_pattern_also_finds() -> None:
    text = '    ssn: "805-86-9702"\n    fax_number: "(503) 246-6384"\n    home_phone: "(503) 246-6385"\n'
    assert found(text) == [("ssn", "805-86-9702"), ("fax", "(503) 246-6384"), ("phone", "(503) 246-6385")]


def test_an_address_and_its_zip_code_are_two_findings() -> None:
    from phiwarden.policy import parse_policy

    text = "Her address on file is 12265 Willow St Apt 8A, San Diego, CA 92151 and the card"
    assert found(text) == [("address", "12265 Willow St Apt 8A, San Diego, CA"), ("zip", "92151")]
    # Disabling zip leaves the street; disabling the address rule leaves neither.
    no_zip = parse_policy('[detection]\ndisable = ["zip"]\n')
    assert found(text, policy=no_zip) == [("address", "12265 Willow St Apt 8A, San Diego, CA")]
    assert found(text, policy=parse_policy('[detection]\ndisable = ["address.street"]\n')) == []


def test_a_url_carrying_a_record_id_is_reported_whole() -> None:
    url = "https://ehr.lakeside-medical.com/chart?mrn=66193251&tab=demographics"
    assert found(f'curl -s "{url}"') == [("url", url)]
    # Without scheme and host, the labelled id itself is the finding.
    assert found("GET /chart?mrn=66193251 200") == [("mrn", "66193251")]
