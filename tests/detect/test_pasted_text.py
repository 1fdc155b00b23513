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


# --- invisible characters, digits of other scripts, Unicode spaces ---------------------------------------

INVISIBLE = {
    "zero-width joiner": "\u200d",
    "zero-width non-joiner": "\u200c",
    "zero-width space": "\u200b",
    "word joiner": "\u2060",
    "soft hyphen": "\u00ad",
    "byte order mark": "\ufeff",
    "variation selector": "\ufe0f",
    "combining acute": "\u0301",
    "right-to-left mark": "\u200f",
}


@pytest.mark.parametrize("mark", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_characters_inside_a_value_belong_to_it(mark: str) -> None:
    for ssn in (f"518{mark}-42{mark}-7731", f"51{mark}8-42-77{mark}31", f"518{mark}42{mark}7731"):
        text = f"Patient SSN: {ssn} on file"
        findings = scan_text(text)
        assert [(f.category, text[f.start : f.end]) for f in findings] == [("ssn", ssn)]
        # The preview is read through the removal: no invisible character shows in it.
        assert mark not in findings[0].preview and findings[0].preview.endswith("7731")


def test_invisible_characters_inside_a_name_belong_to_it() -> None:
    for name in (
        "Mari\u200csol Okon\u200ckwo",
        "Mari\u00adsol Okon\u00adkwo",
        "Jose\u0301 Nu\u0301n\u0303ez",
    ):
        assert ("name", name) in file_found(f"Patient: {name}, DOB 1961-03-14")


def test_an_invisible_run_between_two_capitalised_words_separates_them() -> None:
    for mark in ("\u00ad", "\u200b", "\u2060"):
        name = f"Marisol{mark}Okonkwo"
        assert ("name", name) in file_found(f"Patient: {name}, DOB 1961-03-14")


DIGITS = {
    "Arabic-Indic": "٥١٨-٤٢-٧٧٣١",
    "Extended Arabic-Indic": "۵۱۸-۴۲-۷۷۳۱",
    "Devanagari": "५१८-४२-७७३१",
    "Bengali": "৫১৮-৪২-৭৭৩১",
    "mathematical bold": "𝟓𝟏𝟖-𝟒𝟐-𝟕𝟕𝟑𝟏",
    "mathematical monospace": "𝟻𝟷𝟾-𝟺𝟸-𝟽𝟽𝟹𝟷",
    "superscript": "⁵¹⁸-⁴²-⁷⁷³¹",
    "subscript": "₅₁₈-₄₂-₇₇₃₁",
    "circled": "⑤①⑧-④②-⑦⑦③①",
    "dingbat circled": "❺❶❽-❹❷-❼❼❸❶",
}


@pytest.mark.parametrize("ssn", DIGITS.values(), ids=DIGITS.keys())
def test_decimal_digits_of_every_script_are_read_as_ascii(ssn: str) -> None:
    text = f"Patient SSN: {ssn}"
    findings = scan_text(text)
    assert [(f.category, text[f.start : f.end]) for f in findings] == [("ssn", ssn)]
    # The preview keeps the digits as written, and masks all but the last four.
    assert findings[0].preview == "***-**-" + ssn[-4:]


def test_keycap_digits_are_read_as_their_digits() -> None:
    ssn = "".join(d + "\ufe0f\u20e3" if d.isdigit() else d for d in "518-42-7731")
    assert file_found(f"SSN: {ssn}") == [("ssn", ssn)]


SPACES = {"thin": "\u2009", "en": "\u2002", "em": "\u2003", "ideographic": "\u3000", "figure": "\u2007"}


@pytest.mark.parametrize("space", SPACES.values(), ids=SPACES.keys())
def test_unicode_spaces_between_groups_and_words_are_spaces(space: str) -> None:
    ssn, name = f"518{space}42{space}7731", f"Marisol{space}Okonkwo"
    assert file_found(f"Patient SSN: {ssn}") == [("ssn", ssn)]
    assert ("name", name) in file_found(f"Patient: {name}, DOB 1961-03-14")


def test_tag_characters_are_read_as_the_ascii_they_shadow_and_never_previewed() -> None:
    hidden = "".join(chr(0xE0000 + ord(ch)) for ch in "518-42-7731")
    text = f"SSN: {hidden}"
    findings = scan_text(text)
    assert [(f.category, text[f.start : f.end]) for f in findings] == [("ssn", hidden)]
    assert findings[0].preview == "***-**-7731"


@pytest.mark.parametrize("ssn", ["518.42.7731", "518 42 7731", "518427731"])
def test_an_ssn_after_its_label_may_be_written_with_dots_or_spaces(ssn: str) -> None:
    assert file_found(f"Patient SSN: {ssn}") == [("ssn", ssn)]
    assert file_found(f'ssn: "{ssn}"') == [("ssn", ssn)]


@pytest.mark.parametrize(
    "text",
    [
        "version 518.42.7731 of the package",  # dots without an SSN label
        "SSN: 518.42-7731",  # mixed separators
        "step ① of ③, see note ² and ½ a dose",
        "Translated: نام بیمار\u200cها",  # a zero-width non-joiner inside Persian words
    ],
)
def test_folds_and_removals_make_no_value_of_ordinary_text(text: str) -> None:
    assert file_found(text) == []


def test_offsets_lines_and_columns_count_the_text_as_given() -> None:
    text = "\ufeffnote\u200b one\nSSN 5\u200d18\u00ad-42-7731 and MRN-0048\u200b2913 end"
    findings = scan_text(text)
    assert [(f.category, text[f.start : f.end]) for f in findings] == [
        ("ssn", "5\u200d18\u00ad-42-7731"),
        ("mrn", "MRN-0048\u200b2913"),
    ]
    assert [(f.line, f.column, f.end_line, f.end_column) for f in findings] == [(2, 5, 2, 18), (2, 23, 2, 36)]
