from __future__ import annotations

import pytest

from phiwarden.classify import classify_text, highest
from phiwarden.detect import scan_text
from phiwarden.policy import parse_policy


def tier(text: str, path: str | None = None, **kwargs: object) -> str:
    return classify_text(text, path=path, findings=scan_text(text, path=path), **kwargs).tier  # type: ignore[arg-type]


def test_generic_code_without_a_path_is_public() -> None:
    assert tier("def add(a, b):\n    return a + b\n") == "public"


def test_repository_code_is_internal_by_default() -> None:
    assert tier("def add(a, b):\n    return a + b\n", "src/math.py") == "internal"


def test_phi_values_make_restricted_with_counts() -> None:
    result = classify_text('ssn = "518-42-7731"', findings=scan_text('ssn = "518-42-7731"'))
    assert result.tier == "restricted"
    assert result.reasons[0] == "PHI found: 1 ssn"


def test_credentials_make_restricted() -> None:
    text = "DATABASE_URL=postgres://svc:Tq8vL2pZx9wQ@db.prod.internal/claims"
    result = classify_text(text, findings=scan_text(text))
    assert result.tier == "restricted" and "credentials found: 1" in result.reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '@app.get("/api/patients/{patient_id}")\ndef get(patient_id): ...',
            "patient, member or claims API endpoint",
        ),
        ("CREATE TABLE claims (id bigserial primary key, amount numeric);", "schema or query on a PHI table"),
        (
            "class PatientRecord(Base):\n    pass",
            "data model of a patient, diagnosis, prescription, claim or provider",
        ),
        (
            "def normalize(row):\n    return row['date_of_birth'], row['icd10_code']",
            "code that handles DOB, SSN, MRN, diagnosis-code or insurance fields",
        ),
        ("def scrub(line):\n    return redact_phi(line)", "log scrubbing or de-identification logic"),
        ("import hl7\nmsg = hl7.parse(raw)", "HL7 v2 or FHIR processing"),
        (
            '@login_required\n@app.route("/patients/<id>")\ndef view(id): ...',
            "access control guarding patient data",
        ),
    ],
)
def test_phi_adjacent_code_is_restricted(text: str, reason: str) -> None:
    result = classify_text(text, path="app/views.py")
    assert result.tier == "restricted"
    assert reason in result.reasons


@pytest.mark.parametrize(
    "code",
    [
        "def mask_ssn(patient): return patient.ssn[-4:]",
        "const d = getDob(user);",
        "if (!isValidSsn(value)) throw new Error()",
        'payload = {"mrn": record_id}',
        "ssn = request.form.get('x')",
        "interface Member { ssn?: string }",
        "    dob: Incomplete",
        'row := Record{Mrn: "MRN-000000"}',
        "TEST_PATIENT_DOB=1900-01-01",
        "CREATE TABLE people (id int, dob DATE)",
        "SELECT id, ssn FROM people",
        "SELECT name FROM people ORDER BY dob",
        "patientSSN := load()",
    ],
)
def test_field_names_used_as_code_are_phi_adjacent(code: str) -> None:
    result = classify_text(code)
    assert result.tier == "restricted"
    assert "code that handles DOB, SSN, MRN, diagnosis-code or insurance fields" in result.reasons


@pytest.mark.parametrize(
    "prose",
    [
        # What is left of a pseudonymized prompt: field words and MRN-… surrogates in sentences.
        "Patient Jordan Avery, SSN 287-65-4321, MRN-11223344, needs a reminder email",
        "Patient name, DOB, SSN and address are required on the intake form.",
        "What is the format of an SSN? Her DOB and MRN are on file.",
        "SSN: 287-65-4321 (please write the letter)",
        # Random text (certificates, hashes) holding the letters of a field name.
        "EoHNN/q/xWA5brXethbdXwFeilHfkCoMRN3zUA7tFFHei4R40 kfaPobXvviGabgadXmsqThKuofKHmZ4Dobnr1olJX",
    ],
)
def test_field_names_in_prose_are_not_phi_adjacent(prose: str) -> None:
    assert classify_text(prose).tier == "public"


def test_a_pasted_record_with_labelled_fields_stays_restricted() -> None:
    record = "Patient: Jordan Avery\nDOB: 1984-07-12\nSSN: 287-65-4321\nSummarize the chart."
    result = classify_text(record)
    assert result.tier == "restricted"
    assert result.reasons == ("a patient record (several labelled DOB, SSN, MRN or insurance lines)",)


def test_prose_with_values_is_restricted_until_they_are_replaced() -> None:
    prose = "Patient Marisol Okonkwo, SSN 518-42-7731, MRN-00482913, needs a reminder email"
    assert tier(prose) == "restricted"
    # The residual tier: the same text classified without its values (what pseudonymization leaves).
    assert classify_text(prose).tier == "public"


def test_access_control_alone_is_not_phi_adjacent() -> None:
    assert tier("@login_required\ndef settings(request): ...", "app/settings.py") == "internal"


def test_policy_paths_and_symbols() -> None:
    policy = parse_policy(
        '[classify]\nrestricted_paths = ["services/ehr/**"]\npublic_paths = ["examples/**"]\n'
        'restricted_symbols = ["ChartAccessor"]\nphi_tables = ["member_eligibility_v2"]\n'
    )
    assert classify_text("x = 1", path="services/ehr/util.py", policy=policy).tier == "restricted"
    assert classify_text("x = 1", path="examples/hello.py", policy=policy).tier == "public"
    assert classify_text("acc = ChartAccessor()", path="src/a.py", policy=policy).tier == "restricted"
    assert (
        classify_text("SELECT * FROM member_eligibility_v2", path="q.sql", policy=policy).tier == "restricted"
    )
    # A public path never lowers a tier that content raised.
    assert classify_text("class Patient: ...", path="examples/p.py", policy=policy).tier == "restricted"


def test_third_party_and_licences_are_public() -> None:
    assert tier("MIT License\n", "LICENSE") == "public"
    assert tier("def f(): ...", "vendor/lib/util.py") == "public"


def test_highest_tier() -> None:
    assert highest(["public", "restricted", "internal"]) == "restricted"
    assert highest([]) == "public"
