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
