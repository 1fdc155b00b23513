from __future__ import annotations

import pytest

from phiwarden.detect.fields import FieldClassifier, builtin_rules, split_words


@pytest.fixture(scope="module")
def classifier() -> FieldClassifier:
    return FieldClassifier(*builtin_rules())


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("dateOfBirth", ("date", "of", "birth")),
        ("TEST_PATIENT_DOB", ("test", "patient", "dob")),
        ("address1", ("address", "1")),
        ("x-forwarded-for", ("x", "forwarded", "for")),
        ("HTTPRequestID", ("http", "request", "id")),
        ("patient.first_name", ("patient", "first", "name")),
    ],
)
def test_split_words(name: str, words: tuple[str, ...]) -> None:
    assert split_words(name) == words


@pytest.mark.parametrize(
    ("name", "category", "strength"),
    [
        ("dob", "date", "strong"),
        ("dateOfBirth", "date", "strong"),
        ("BirthDate", "date", "strong"),
        ("admittedAt", "date", "medium"),
        ("ssnNumber", "ssn", "strong"),
        ("social_security_number", "ssn", "strong"),
        ("patientMrn", "mrn", "strong"),
        ("ChartNumber", "mrn", "strong"),
        ("first_name", "name", "strong"),
        ("familyName", "name", "strong"),
        ("next_of_kin", "name", "strong"),
        ("name", "name", "weak"),
        ("city", "address", "weak"),
        ("address_line1", "address", "medium"),
        ("zipCode", "zip", "medium"),
        ("phone_number", "phone", "medium"),
        ("ecPhone", "phone", "strong"),
        ("patient_email", "email", "strong"),
        ("faxNumber", "fax", "medium"),
        ("remote_addr", "ip", "medium"),
        ("subscriberId", "health_plan", "strong"),
        ("policy_number", "health_plan", "strong"),
        ("account_number", "account", "strong"),
        ("dlNumber", "license", "strong"),
        ("vin", "vehicle", "strong"),
        ("insulinPumpSerial", "device", "strong"),
        ("passportNumber", "other_id", "strong"),
        ("client_secret", "secret", "strong"),
        ("DATABASE_URL", "secret", "strong"),
    ],
)
def test_field_names(classifier: FieldClassifier, name: str, category: str, strength: str) -> None:
    verdict = classifier.classify(name)
    assert verdict is not None, name
    assert (verdict.category, verdict.strength) == (category, strength)


@pytest.mark.parametrize(
    "name",
    [
        "file_name", "hostname", "username", "created_at", "updated_at", "birth_year", "dob_format",
        "ssn_encrypted", "support_phone", "hospital_name", "plan_name", "order_id", "referring_npi",
        "server_ip", "client_id", "email_verified", "phone_type", "version", "name_prefix", "line_number",
    ],
)  # fmt: skip
def test_field_names_that_hold_no_personal_value(classifier: FieldClassifier, name: str) -> None:
    assert classifier.classify(name) is None


def test_overlong_names_are_not_field_names(classifier: FieldClassifier) -> None:
    assert classifier.classify("first_name_" + "x" * 80) is None
