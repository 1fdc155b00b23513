"""Prose mode: names and dates in what developers write to a model (prompts, chat)."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from phiwarden.detect import engine_for, scan_text
from phiwarden.detect.prose import name_key, prose_scanner
from phiwarden.policy import Policy


def prose_found(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in scan_text(text, prose=True)]


def file_found(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in scan_text(text)]


# --- names in prose -------------------------------------------------------------------------------------

PROSE_NAMES = [
    ("Write a friendly reminder email to Marisol Okonkwo about her appointment", "Marisol Okonkwo"),
    ("Dear Dr. Chen, please find the referral attached.", "Chen"),
    ("Dear Dr Chen Wei, thanks for seeing her.", "Chen Wei"),
    ("Mrs. Okonkwo called about the refill.", "Okonkwo"),
    ("The patient, Tobias Lindqvist (DOB 1961-03-04), needs a letter.", "Tobias Lindqvist"),
    ("A patient named Okonkwo Marisol was seen today.", "Okonkwo Marisol"),
    ("pt is Zanele Mokoena, please translate the note", "Zanele Mokoena"),
    ("Tobias Lindqvist, 72, presented with chest pain.", "Tobias Lindqvist"),
    ("Tobias Lindqvist was admitted overnight; draft the handoff.", "Tobias Lindqvist"),
    ("Update Okonkwo Marisol's contact details in the portal.", "Okonkwo Marisol"),
    ("Send the discharge summary for Ana da Cruz to the ward.", "Ana da Cruz"),
    ("Email Marisol Okonkwo the lab results.", "Marisol Okonkwo"),
    ("Ping Xu's visit got cancelled, let her know.", "Ping Xu"),
    ("Hi Marisol, your lab results are ready.", "Marisol"),
    ("Transfer Zakhele Lwandle from ICU and notify her husband.", "Zakhele Lwandle"),
    ("Reminder queued for Nkechi Adeyemi <nkechi.a84@gmail.com>, check the template", "Nkechi Adeyemi"),
    ("Marisol Okonkwo missed her appointment twice; draft a note.", "Marisol Okonkwo"),
    ("Sr. José Núñez necesita su receta.", "José Núñez"),
]


@pytest.mark.parametrize(("text", "name"), PROSE_NAMES)
def test_names_in_prose_are_found(text: str, name: str) -> None:
    assert ("name", name) in prose_found(text), prose_found(text)


PROSE_NEGATIVES = [
    "migrate to Spring Boot",
    "ask Claude Code to refactor this module",
    "talk to Kubernetes through the Python client",
    "for Visual Studio and Visual Studio Code",
    "Deploy to San Francisco and New York regions; fly to Hong Kong next week.",
    "Ask Priya Raman to review the PR before merging.",
    "I paired with Tom Becker on the migration yesterday.",
    "Martin Fowler wrote about refactoring in his book.",
    "Our designer Teresa Clark wants Inter instead of Roboto.",
    "Hello World in Rust, Go and Zig please.",
    "Dear Hiring Manager, please find my resume attached.",
    "Hi Team, the deploy is done.",
    "Write the release notes for Apple Silicon and Google Cloud Run support.",
    "Compare Amazon Aurora with Rocky Linux images on Azure Blob Storage.",
    "Generate tests for the Patient Search page and the Appointment Reminder service.",
    "Grace Hopper invented the compiler.",
    "Meet me on Monday, January 6 about the Christmas release.",
    "See you in April Fools release notes from May Day sprint.",
]


@pytest.mark.parametrize("text", PROSE_NEGATIVES)
def test_capitalised_words_that_are_no_patient_are_not_found(text: str) -> None:
    assert [f for f in prose_found(text) if f[0] == "name"] == []


def test_prose_rules_are_off_for_files() -> None:
    text = "Write a friendly reminder email to Marisol Okonkwo about her appointment"
    assert file_found(text) == []
    assert scan_text(text, path="notes/reminder.md") == []
    assert engine_for(Policy()).scan(text, prose=True)[0].rule == "name.prose"


def test_a_given_name_alone_counts_inside_a_record() -> None:
    # No cue and no care words: not reported; beside an SSN it is the record's name.
    assert prose_found("Marisol Okonkwo is on the list") == []
    assert ("name", "Marisol Okonkwo") in prose_found("Marisol Okonkwo 518-42-7731")


def test_one_name_in_prose_does_not_raise_the_others() -> None:
    credits = "Patches by Cheryl Sabella, Terry Reedy and Tim Peters' notes, NEWS for 3.12."
    assert [v for c, v in prose_found(credits) if c == "name"] == ["Tim Peters"]


def test_ambiguous_given_names_need_a_cue() -> None:
    assert prose_found("Grace Okafor is on the list") == []
    assert ("name", "Grace Okafor") in prose_found("Send the refill reminder to Grace Okafor.")


def test_names_of_colleagues_in_engineering_talk_are_left_alone() -> None:
    assert prose_found("Thanks to Emma Johansson for the Helm chart fixes in the release") == []
    # A care word beside the same phrasing makes her a patient.
    assert prose_found("Thanks to Emma Johansson for coming to her appointment") != []


# --- dates in prose -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("(seen 03/14/2025, phone 617-555-0143)", "03/14/2025"),
        ("the visit on 04/02/2025 was rescheduled", "04/02/2025"),
        ("admitted 2025-03-14 with pneumonia", "2025-03-14"),
        ("discharged on March 14, 2025 to home", "March 14, 2025"),
        ("DOS 3/14/25, claim denied", "3/14/25"),
        ("her MRI results from 12 Mar 2025 are in", "12 Mar 2025"),
    ],
)
def test_dates_after_visit_words_are_found_in_prose(text: str, date: str) -> None:
    assert ("date", date) in prose_found(text)


def test_a_date_beside_a_patient_is_the_records() -> None:
    text = "Patient: Marisol Okonkwo was seen on 03/14/2025 and Patient: Tobias Lindqvist on 04/02/2025."
    dates = [v for c, v in prose_found(text) if c == "date"]
    assert dates == ["03/14/2025", "04/02/2025"]


@pytest.mark.parametrize(
    "text",
    [
        "the 2025-03-14 release fixed the importer",
        "Traceback at 2025-03-14T10:22:01Z in worker.py",
        "tests ran 03/14/2025 in CI, see the build log",
        "order 20250314 shipped",
    ],
)
def test_dates_without_a_visit_or_a_record_are_not_found(text: str) -> None:
    assert [f for f in prose_found(text) if f[0] == "date"] == []


# --- e-mail addresses and identifiers after their labels -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "send the results to marisol.okonkwo@gmail.com",
        "email: marisol.okonkwo@gmail.com",
        "Can you check why m.okonkwo84@outlook.com bounced?",
    ],
)
def test_an_email_address_in_prose_is_a_persons(text: str) -> None:
    assert [c for c, _ in prose_found(text)] == ["email"]
    # In a file the same address needs a patient's field name or a record around it.
    assert file_found(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "The CI mails from no-reply@github.com and ci@ourclinic.com go to spam",
        "dependabot[bot]@users.noreply.github.com opened 12 PRs",
        "sa-export@ehr-prod.iam.gserviceaccount.com needs the bucket role",
        "Forward it to frontdesk@northsideclinic.org and support@vendor.io",
        "git config user.email dev@example.com",
    ],
)
def test_machine_and_role_mailboxes_are_no_persons(text: str) -> None:
    assert [f for f in prose_found(text) if f[0] == "email"] == []


@pytest.mark.parametrize(
    ("text", "category", "value"),
    [
        ("Member ID: XGH884512377, group 004412", "health_plan", "XGH884512377"),
        ("Subscriber ID W123456789 (Aetna) was rejected", "health_plan", "W123456789"),
        ("her member number is 88451237701", "health_plan", "88451237701"),
        ("Driver's license S12345678 (MA)", "license", "S12345678"),
        ("driver license number D4829913", "license", "D4829913"),
        ("device serial SN-88341-XK on her pacemaker", "device", "SN-88341-XK"),
        ("MRN 0048 2913", "mrn", "0048 2913"),
    ],
)
def test_identifiers_after_their_labels_are_found_in_prose(text: str, category: str, value: str) -> None:
    assert (category, value) in prose_found(text), prose_found(text)


def test_a_labelled_identifier_that_counts_up_is_a_persons_only_in_prose() -> None:
    text = "Subscriber ID W123456789 (Aetna)"
    assert file_found(text) == []  # documentation writes such examples
    assert prose_found("Member ID: 000000000") == []  # one digit over and over is a stand-in still
    assert prose_found("member id EXAMPLE12345") == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Read /data/notes/Marisol Okonkwo.txt and summarize it", "Marisol Okonkwo"),
        ("the scans are in /images/Okonkwo Marisol/chest-xray.png", "Okonkwo Marisol"),
        ("Can you write a text message reminding Marisol Okonkwo about Tuesday", "Marisol Okonkwo"),
        ("We keep calling Tobias Lindqvist but nobody answers", "Tobias Lindqvist"),
    ],
)
def test_file_names_and_reminder_verbs_introduce_names(text: str, name: str) -> None:
    assert ("name", name) in prose_found(text), prose_found(text)


@pytest.mark.parametrize(
    "text",
    [
        r"C:\Users\Marisol Okonkwo\AppData\Local\Temp\build.log",  # the developer's own account
        "/home/Tobias Lindqvist/projects/app.py",
        "/Users/me/Library/Application Support/Code/User/settings.json",
        "open /srv/docs/Release Notes.md and /srv/docs/Project Alpha.docx",
        "Schedule the Sprint Review with the Platform Team",
    ],
)
def test_paths_and_verbs_without_a_person_are_left_alone(text: str) -> None:
    assert [f for f in prose_found(text) if f[0] == "name"] == []


# --- the word lists -----------------------------------------------------------------------------------


def _data(name: str) -> dict[str, object]:
    text = resources.files("phiwarden.detect").joinpath("data", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_the_given_name_lexicon_spans_many_cultures() -> None:
    lexicon = _data("given_names.toml")
    given = lexicon["given"]
    assert isinstance(given, dict) and len(given) >= 15
    names = {name_key(n) for names in given.values() for n in names}
    assert len(names) >= 4000
    # Names that are also words count only after a cue; they are given names all the same.
    scanner = prose_scanner()
    assert scanner.ambiguous <= scanner.given and {"grace", "austin", "li"} <= scanner.ambiguous


def test_name_keys_ignore_case_accents_and_hyphens() -> None:
    assert name_key("José") == name_key("JOSE") == "jose"
    assert name_key("Min-jun") == "minjun"
    assert name_key("Ayşe") == "ayse" and name_key("Işıl") == "isil"
    scanner = prose_scanner()
    assert {"marisol", "chidi", "yerlan", "tatenda", "xiaoming"} <= scanner.given
    assert "claude" in scanner.never and "claude" not in scanner.ambiguous


@pytest.mark.parametrize(
    "text",
    [
        "Ab Cd " * 50_000,
        "to Ana Ruiz her " * 20_000,
        "Dr. Ab " * 40_000,
        "Hi Ana, " * 40_000,
        "Ana Ruiz's " * 30_000,
        "seen on 03/14/2025 " * 20_000,
        "/x/Ab_Cd_518-42-7731_" * 20_000,
        "518\u201142\u20117731 " * 30_000,
        "Ab" + " Cd" * 100_000,
        "To " * 100_000 + "Ana Ruiz",
        "Ana" + " da" * 100_000 + " Cruz",
    ],
)
def test_hostile_prose_completes(text: str) -> None:
    assert isinstance(scan_text(text, prose=True), list)
