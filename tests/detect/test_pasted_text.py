"""Text as developers paste it: Unicode dashes and fullwidth digits, identifiers in file names."""

from __future__ import annotations

import pytest

from phiwarden.detect import scan_text


def file_found(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in scan_text(text)]


# --- Unicode dashes and fullwidth digits -------------------------------------------------------------

DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\ufe63", "\uff0d"]


@pytest.mark.parametrize("dash", DASHES, ids=[f"U+{ord(d):04X}" for d in DASHES])
def test_identifiers_written_with_unicode_dashes_are_found(dash: str) -> None:
    ssn, phone, dob, mrn = (
        v.replace("-", dash) for v in ("518-42-7731", "617-432-8890", "1984-07-19", "MRN-40981723")
    )
    text = f"Patient: Marisol Okonkwo, {ssn}, cell {phone}, DOB {dob}, {mrn}."
    assert ("ssn", ssn) in file_found(text)
    assert ("phone", phone) in file_found(text)
    assert ("date", dob) in file_found(text)
    assert ("mrn", mrn) in file_found(text)


def test_offsets_and_previews_of_a_dashed_value_are_the_texts() -> None:
    text = "é… note for 518\u201142\u20117731\nsecond line SSN 518\u201342\u20137731"
    findings = scan_text(text)
    assert [text[f.start : f.end] for f in findings] == ["518\u201142\u20117731", "518\u201342\u20137731"]
    # The preview keeps the dash as written; line and column count code points.
    assert [f.preview for f in findings] == ["***\u2011**\u20117731", "***\u2013**\u20137731"]
    assert [(f.line, f.column) for f in findings] == [(1, 13), (2, 17)]


def test_fullwidth_digits_and_no_break_spaces_are_read_as_ascii() -> None:
    text = (
        "ssn \uff15\uff11\uff18\uff0d\uff14\uff12\uff0d\uff17\uff17\uff13\uff11; patient Marisol\u00a0Okonkwo"
    )
    assert file_found(text) == [("ssn", "５１８－４２－７７３１"), ("name", "Marisol\u00a0Okonkwo")]


def test_an_ascii_text_is_left_as_given() -> None:
    text = "ssn 518-42-7731 — and an em dash in prose"
    assert file_found(text) == [("ssn", "518-42-7731")]


# --- identifiers in file names and paths -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/data/exports/Okonkwo_Marisol_518-42-7731.txt",
            [("name", "Okonkwo_Marisol"), ("ssn", "518-42-7731")],
        ),
        (
            "/data/exports/518-42-7731_Okonkwo_Marisol.pdf",
            [("ssn", "518-42-7731"), ("name", "Okonkwo_Marisol")],
        ),
        ("scans/MRN-40981723_García-López_Ana.pdf", [("mrn", "MRN-40981723"), ("name", "García-López_Ana")]),
        (
            'open("exports/Okonkwo_Marisol_MRN40981723.csv")',
            [("name", "Okonkwo_Marisol"), ("mrn", "MRN40981723")],
        ),
        # The words of a file name that are no person's name.
        ("/srv/Final_Report_518-42-7731.txt", [("ssn", "518-42-7731")]),
        ("/srv/claims_518-42-7731_v2.json", [("ssn", "518-42-7731")]),
    ],
)
def test_identifiers_and_names_in_file_names(path: str, expected: list[tuple[str, str]]) -> None:
    assert file_found(path) == expected


def test_file_name_previews_keep_the_underscore() -> None:
    finding = scan_text("/data/exports/Okonkwo_Marisol_518-42-7731.txt")[0]
    assert finding.preview == "O******_M******"


@pytest.mark.parametrize(
    "text",
    [
        "release_2024-03-14.txt",
        "/var/log/build_20240314_4471.log",
        "snake_case_identifier_1234567",
        "Visual_Studio_2022.sln",
        "Okonkwo_Marisol_notes.txt",  # a name alone in a file name: nothing says it is a person
        "x518-42-7731",
    ],
)
def test_file_names_without_identifiers_are_not_phi(text: str) -> None:
    assert file_found(text) == []
