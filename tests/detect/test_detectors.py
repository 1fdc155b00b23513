"""Every built-in pattern detector: what it finds, and what it leaves alone."""

from __future__ import annotations

import base64
import json

import pytest

from phiwarden.detect.registry import builtin_detectors
from tests.helpers import covered, found, values


def _jwt(payload: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.Xk2cQm9vZt3pL8aQw1eR7yT5uI0oP4sD"


# A fake GitHub token of the right shape (never a real one).
_GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"

POSITIVE = [
    (
        "secret.private_key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----",
        "secret",
    ),
    ("secret.aws_access_key_id", "aws_key = 'AKIAZ7ZQ3RXK5WPL2TNB'", "secret"),
    ("secret.github_token", f"token: {_GITHUB}", "secret"),
    ("secret.slack_token", "SLACK=xoxb-2048123456-4096789012-Qm9vZ3JhYmJpbmc", "secret"),
    ("secret.stripe_live_key", "stripe.api_key = 'sk_live_51HxQ2bLkP8m3NzR7tY9wV4c'", "secret"),
    (
        "secret.sendgrid_api_key",
        "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",
        "secret",
    ),
    (
        "secret.azure_storage_key",
        "DefaultEndpointsProtocol=https;AccountName=ehrblobs;AccountKey="
        + "q3Yx9Kf2Lm8Zp1Rt7Wv4By6Nc0Hd5Jg2Ks9EaT3uI8oP1sD4fG7hJ0kL3zX6cV9bN2mQ5wE8rT1yU4iO7pAbCd"
        + "==;EndpointSuffix=core.windows.net",
        "secret",
    ),
    ("secret.vault_token", "VAULT_TOKEN=hvs.CAESIJ7kq2Lm9Zp1Rt7Wv4By6Nc0Hd5Jg2Ks9EaT3uI8oP1s", "secret"),
    (
        "secret.url_credentials",
        "DATABASE_URL=postgres://svc_claims:Tq8#vL2pZx9w@db.prod.internal:5432/claims",
        "secret",
    ),
    (
        "secret.connection_string",
        'cs = "Server=tcp:ehr.database.windows.net;Database=ehr;User ID=etl;Password=Wnt3r!sC0ming;"',
        "secret",
    ),
    ("secret.jwt", f"Authorization: Bearer {_jwt({'sub': 'u-88123', 'scope': 'patients:read'})}", "secret"),
    ("ssn.labeled", "SSN: 518427731", "ssn"),
    ("ssn.formatted", "member ssn 518-42-7731 on file", "ssn"),
    ("mrn.labeled", "medical record number 40981723", "mrn"),
    ("mrn.labeled", "MRN 0048 2913 (written in groups)", "mrn"),
    ("ssn.labeled", "Patient SSN: 518.42.7731", "ssn"),
    ("mrn.prefixed", "see MRN0040981723 for history", "mrn"),
    ("mrn.prefixed", "Summarize the chart for MRN-00482913.", "mrn"),
    ("health_plan.mbi", "Medicare MBI 1EG4TE5MK74 active", "health_plan"),
    ("device.udi", "implant (01)10884521062856(17)280501(10)A2B3C4(21)S1882", "device"),
    ("device.serial_labeled", "Pacemaker interrogated; S/N PM88341XK7, battery OK", "device"),
    ("vehicle.vin", "VIN 1M8GDM9AXKP042787 on the claim", "vehicle"),
    ("account.iban", "refund to GB82 WEST 1234 5698 7654 32", "account"),
    ("account.payment_card", "card number 4539 5787 6362 1486 declined", "account"),
    ("date.birth_labeled", "pt DOB 07/19/1984, seen today", "date"),
    ("date.event_labeled", "admitted on 2024-01-02 for observation", "date"),
    ("date.age_over_89", "patient aged 93, lives alone", "date"),
    ("name.after_patient", "Called patient Marisol Okonkwo about results.", "name"),
    ("name.after_client", "Therapy session: client Marisol Okonkwo reported fewer symptoms.", "name"),
    ("name.after_patient", "The patient, Marisol Okonkwo, was discharged home.", "name"),
    ("name.after_honorific", "Mrs. Marisol Okonkwo is a 72 y/o female seen for follow-up of CHF.", "name"),
    ("name.relative", "Spoke with patient's son, Daniel Okonkwo, at the bedside.", "name"),
    ("name.before_identifier", "Marisol Okonkwo (MRN 40981723) missed her visit", "name"),
    ("name.before_label", "Seen today: Marisol Okonkwo DOB 07/19/1984, chest pain", "name"),
    ("name.before_label", '# TODO: drop test user "Rahul Mehta" born 1990-01-15 before release', "name"),
    ("name.after_age", "72 y/o F, Marisol Okonkwo, presents with SOB.", "name"),
    ("name.after_member", "Eligibility check for member Marisol Okonkwo (plan PPO-22) failed", "name"),
    ("name.relative_given", "Pt's wife, Marjorie, called back after the appointment.", "name"),
    ("name.asserted", 'assertEquals("Marisol Okonkwo", patient.getFullName());', "name"),
    ("name.asserted", 'Assert.AreEqual("Marisol Okonkwo", result.FullName);', "name"),
    ("name.expected", 'expect(patient.name).toBe("Marisol Okonkwo");', "name"),
    ("name.expected", 'assertThat(p.getLastName()).isEqualTo("Okonkwo Reyes");', "name"),
    ("phone.in_prose", "Reached her by phone at 503 246 6384 yesterday", "phone"),
    ("email.address", '{"mrn": "MRN-40981723", "contact": "marisol.o84@gmail.com"}', "email"),
    ("url.patient_record", "open https://ehr.northside.org/patients/40981723/chart", "url"),
    ("url.identifier_query", 'curl -s "https://ehr.northside.org/chart?mrn=40981723&tab=labs"', "url"),
    ("url.identifier_query_string", "GET /chart?mrn=40981723&tab=labs 200", "mrn"),
    ("zip.labeled", "ZIP code 97217 failed validation", "zip"),
    ("address.street", "Her address on file is 4417 Larkspur Ln, Portland", "address"),
    ("name.in_file_name", "Read /data/exports/Okonkwo_Marisol_518-42-7731.txt", "name"),
    ("name.in_file_name_after_id", "cp scans/MRN-40981723_Okonkwo_Marisol.pdf /tmp", "name"),
]


@pytest.mark.parametrize(("rule", "text", "category"), POSITIVE, ids=[p[0] for p in POSITIVE])
def test_detector_finds(rule: str, text: str, category: str) -> None:
    assert category in [c for c, _ in found(text)], (rule, found(text))


NEGATIVE = [
    ("aws example key", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
    ("documented jwt", f"Bearer {_jwt({'sub': '1234567890', 'name': 'John Doe', 'iat': 1516239022})}"),
    ("local database default", "DATABASE_URL: postgres://postgres:postgres@localhost:5432/test"),
    ("url with env reference", "redis://:${REDIS_PASSWORD}@cache:6379/0"),
    ("invalid ssn", "ssn 000-12-3456 and 666-01-2345"),
    ("documentation ssn", "format NNN-NN-NNNN, e.g. 123-45-6789"),
    ("npi is a provider's", "referring NPI 1234567893"),
    ("test card", "use 4242 4242 4242 4242 in test mode"),
    ("fictional phone", "call 212-555-0142 for the demo"),
    ("toll free", "support line 1-800-356-9377"),
    ("versions and dates", "v2.18.7 released 2025-04-06 (#342, 21c91e1)"),
    ("private ip", "upstream=10.162.22.50:8080 nameserver=192.168.1.1"),
    ("uuid", "request_id=476ff8a8-1eaa-4cd5-88e7-66f6c7aaa110"),
    ("year range", "Copyright 1991-1995 Stichting Mathematisch Centrum"),
    ("author email in a header", "# Author: Grace Hopper <grace.hopper@navy.example>"),
    ("url template", "GET /api/v1/patients/{patientId}/records"),
    ("numbers in code", "MAX_INT32 = 2147483647\nFNV_PRIME = 16777619\nTIMEOUT_MS = 30000"),
    ("age under 90", "patient aged 67"),
    ("client as a software word", "see `Client VPN Endpoints` and Client Certificate Revocation Lists"),
    (
        "honorific without care context",
        "Mr. Guido Rossum reviewed the patch; Ms. Ada Lovelace wrote the notes.",
    ),
    ("relative without care context", "the father Process waits for its child; mother Node and sister Nodes"),
    ("dicom documentation names", 'ds.PatientName = "CITIZEN^Joan"\nds.PatientName = "Citizen^Jan"'),
    ("bounds of an identifier", "maximum_rut_person = 31999999\nminimum_rut = 1000000"),
    ("title words", "MEMBER OF DOUBLE VERTICAL BAR"),
    ("report number", "Tech. Report MPI-I-2006-1-006, Saarbrucken"),
    (
        "documentation ids",
        '"PolicyId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", "subscriberId": "123456789012"',
    ),
    ("generated member id", '"MemberId": "1ab2345c-67de-8901-f23g-45h678901j2k"'),
    ("random policy id", '"policyId": "PbfR73F8oh5MMfr9uRtFDB"'),
    ("sandbox card", 'Visa: Final = "4000111111111115"  # card'),
    ("asserted file name", 'assertEquals("Annual Report", doc.getFileName());'),
    ("expected class name", 'expect(widget.className).toBe("Primary Button");'),
    ("asserted name of a thing", 'assertEquals("Build Pipeline", job.getName());'),
    ("age of a thing", "This 10 year old Honda Civic (still runs) and a 15 years old Ubuntu Server, retired"),
    ("words of a file name beside a date", "reports/Final_Report_2024-03-14.pdf, Release_Notes_v2.txt"),
    ("expected name of a thing", 'expect(store.name).toBe("Corner Bakery");'),
    ("relative in code", "the parent process forks a son, Worker, and waits"),
    ("community member", "One Rust community member, Andrew Gallant, has already created a fast grep"),
    ("serial without a medical device", "serial number ABX-44812-7 of the build server"),
    ("groups of a number that is not an MRN", "MRN field width 0048 2913"),
]


@pytest.mark.parametrize(("label", "text"), NEGATIVE, ids=[n[0] for n in NEGATIVE])
def test_detector_ignores(label: str, text: str) -> None:
    assert [c for c, _ in found(text) if c != "secret" or "secret" in label] == [], found(text)


def test_every_builtin_detector_is_exercised() -> None:
    exercised = {rule for rule, _, _ in POSITIVE}
    silent = {"provider.npi", "provider.dea"}  # vetoes only; covered by test_npi_vetoes_identifiers
    detectors, _ = builtin_detectors()
    vendor = {d.id for d in detectors if d.stage == "vendor-secrets"}
    untested = {d.id for d in detectors} - exercised - silent - vendor
    # The remaining detectors are variants exercised elsewhere in the suite.
    assert untested <= {
        "secret.aws_secret_access_key", "secret.authorization_header", "phone.nanp", "phone.international",
        "fax.labeled", "date.age_over_89_years", "other_id.nhs_number", "ip.public", "url.identifier_query",
        "zip.after_state",
    }  # fmt: skip


@pytest.mark.parametrize(
    "token",
    [
        "glpat-x7Yq2Lm9Pk4Rt6Wz8Bn3",
        "sk-ant-api03-" + "Qm9vZ2xlR29vZ2xlR29vZ2xl" * 4,
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3h",
        "dop_v1_" + "a1" * 32,
        "xoxp-1234567890-0987654321-Zm9vYmFyYmF6cXV4",
    ],
)
def test_vendor_token_formats(token: str) -> None:
    assert values(f"export TOKEN_VALUE={token}", "secret") == [token]


def test_npi_vetoes_identifiers() -> None:
    text = "ordering NPI 1234567893, patient MRN 40981723"
    assert values(text, "mrn") == ["40981723"]
    assert not covered(text, "1234567893")


def test_section_numbers_in_a_record_are_not_addresses() -> None:
    text = 'mrn = "MRN-40981723"  # remote client: see part 5, sect 6.2.1.1 and sect_6.2.1.2\n'
    assert values(text, "ip") == []
    assert values('mrn = "MRN-40981723"  # remote client 81.2.69.160\n', "ip") == ["81.2.69.160"]


def test_a_table_row_of_index_and_names_is_no_street_address() -> None:
    # pandas prints the row index, then columns two or more spaces apart; no house is number 0.
    row = "   first_name  last_name\n0       Imani     Brooks\n1      Viktor   Petrenko\n"
    assert values(row, "address") == []
    assert values("Patient lives at 18 Willow  Brook, Tulsa", "address") != []


def test_born_with_a_year_alone_names_no_one() -> None:
    assert values("Open Source born 2010 in Berkeley; Kelly Slater born in 1972", "name") == []


def test_age_over_89_is_a_date_category() -> None:
    assert values("patient is a 93 year-old female", "date") == ["93"]


def test_builtin_patterns_and_keywords_compile_alone() -> None:
    from phiwarden.detect.registry import keyword_pattern
    from phiwarden.detect.rx import compile_pattern

    detectors, _ = builtin_detectors()
    for detector in detectors:
        compiled = compile_pattern(detector.pattern, ignore_case=detector.ignore_case)
        assert set(compiled.group_index) <= {"value"}, detector.id
        for keyword in detector.keywords:
            compile_pattern(keyword_pattern(keyword))


def test_a_name_in_a_record_line_ends_before_the_next_label_and_starts_after_its_context_word() -> None:
    assert values("Pt Rosalind Okafor SSN 412-33-9087 was admitted.", "name") == ["Rosalind Okafor"]
    assert values("PATIENT: ROSALIND OKAFOR DOB: 07/19/1984", "name") == ["ROSALIND OKAFOR"]
    assert values("chart for Mrs. Hildegard Ostrowski (DOB 1939-10-10)", "name") == ["Hildegard Ostrowski"]
    # A capitalised word that is no label stays part of the name.
    assert values("Pt Rosalind Okafor Ruiz, 67 y/o", "name") == ["Rosalind Okafor Ruiz"]
    # One capitalised word before a label is a verb or a heading, not a full name.
    assert values("Verified DOB 07/19/1984 against the chart", "name") == []


def test_a_chinese_or_japanese_given_name_of_one_ideograph() -> None:
    assert values("Can someone call back pt 博 赵 (DOB 1937-01-08, MRN 11777805)", "name") == ["博 赵"]
    assert values("heads up: pt 幹 佐藤 DOB 1946-02-11 called", "name") == ["幹 佐藤"]


def test_dates_led_by_a_weekday_and_what_follows_a_dob_label_is_no_name() -> None:
    assert found("Patient DOB Wed Mar 14 1979, seen today") == [("date", "Wed Mar 14 1979")]
    assert values('dob: "Wednesday, March 14, 1979"\nmrn: MRN-40981723\n', "date", path="p.yml") == [
        "Wednesday, March 14, 1979"
    ]
    # A month that is a given name stays a name.
    assert values("Patient June Carter DOB 1979-03-14", "name") == ["June Carter"]


def _token(length: int, alphabet: str = "aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1xY") -> str:
    # Deterministic stand-in tokens of the vendors' shapes (never real keys).
    return "".join(alphabet[(i * 7 + length) % len(alphabet)] for i in range(length))


@pytest.mark.parametrize(
    ("vendor", "token"),
    [
        ("openrouter", "sk-or-v1-" + _token(64, "0123456789abcdef")),
        ("groq", "gsk_" + _token(52)),
        ("xai", "xai-" + _token(80)),
        ("replicate", "r8_" + _token(37)),
        ("perplexity", "pplx-" + _token(48)),
        ("linear", "lin_api_" + _token(40)),
        ("notion", "secret_" + _token(43)),
        ("atlassian", "ATATT3" + _token(180)),
        ("doppler", "dp.st." + _token(43)),
        ("google oauth", "ya29." + _token(60)),
        ("telegram", "7381920465:AA" + _token(33)),
        ("twilio", "SK" + _token(32, "0123456789abcdef")),
        ("sentry", "https://" + _token(32, "0123456789abcdef") + "@o123456.ingest.sentry.io/1234567"),
    ],
)
def test_more_vendor_tokens(vendor: str, token: str) -> None:
    assert values(f"curl -H 'x: {token}' https://api.example.org", "secret") == [token], vendor


def test_machine_and_role_mailboxes_are_no_persons_email() -> None:
    account = '{"client_email": "etl@ehr-prod.iam.gserviceaccount.com", "mrn": "MRN-40981723"}'
    assert values(account, "email") == []
    assert values("From: Front Desk <frontdesk@sunrise-clinic.com>\npt MRN 40981723", "email") == []
    assert values('{"email": "ana.ruiz84@gmail.com", "mrn": "MRN-40981723"}', "email") == [
        "ana.ruiz84@gmail.com"
    ]


def test_fhir_resource_types_in_prose_are_no_names() -> None:
    assert values("A reference to a patient, Practitioner, Encounter or Device resource", "name") == []
    assert values("patient Ana Ruiz, DOB 07/19/1984", "name") == ["Ana Ruiz"]


def test_a_quoted_key_beside_other_tuple_items_is_no_pair() -> None:
    fields = "    'LOC_7': ('sequence', DATATYPES_STRUCTS['CE'], 'CE', 'LICENSE_NUMBER', 'HL70461', -1),\n"
    assert found(fields, path="hl7/fields.py") == []
    assert values('m.put("mrn", "40981723");', "mrn") == ["40981723"]
    assert values('{{"dob", "1984-07-19"}, {"mrn", "40981723"}}', "mrn") == ["40981723"]


def test_specification_element_names_and_urns_are_neither_names_nor_secrets() -> None:
    x12 = (
        "<element><name>Patient Responsibility Amount</name></element>\n"
        "<element><name>Billing Provider Postal Zone or ZIP Code</name></element>\n"
        '<segment xid="AMT" name="Total MSP Patient Liability Met Amount"/>\n'
    )
    assert found(x12, path="map/835.xml") == []
    valueset = (
        '{"code": "urn:ihe:pat:apsr:cancer:urinary_bladder:2010", "display": "Patient: Feeling Better"}'
    )
    assert found(valueset, path="valuesets.json") == []
    assert values('kms_key = "arn:aws:kms:us-west-2:111122223333:key/1a2b3c4d"', "secret") == []


def test_a_connection_string_template_holds_no_password() -> None:
    template = 'conn = "DRIVER={0};SERVER={1};DATABASE={2};USER={3};PWD={4}".format(*parts)'
    assert values(template, "secret") == []
    assert values('cs = "Server=db;Database=ehr;Password=${DB_PASSWORD};"', "secret") == []


def test_fhir_search_bounds_in_a_url_name_no_one() -> None:
    assert values("# /Patient?birthdate=gt1944&birthdate=lt1964", "url") == []
    assert values("https://ehr.acme-health.com/fhir/Patient?birthdate=ge2019-11-19", "url") == []
    assert values("https://portal.acme-health.com/chart?mrn=40981723", "url") != []


def test_the_display_name_of_a_coded_value_is_no_person() -> None:
    cda = (
        "<patient><name><given>Ana</given><family>Ruiz</family></name>"
        '<maritalStatusCode code="S" displayName="Never Married" codeSystem="2.16.840.1.113883.5.2"/>'
        '<birthTime value="19840719"/><raceCode code="2106-3" displayName="White"/></patient>'
    )
    assert values(cda, "name", path="ccd.xml") == ["Ana", "Ruiz"]
    assert values('{"displayName": "Ana Ruiz", "mrn": "MRN-40981723"}', "name") == ["Ana Ruiz"]


def test_stand_in_people_and_masked_names_in_records() -> None:
    cda = '<patient><name><given>Adam</given><family>Everyman</family></name><birthTime value="19540503"/></patient>'
    assert values(cda, "name", path="ccd.xml") == []
    assert values('{"family_name": "Hong", "given_name": "Gildong", "dob": "1984-07-19"}', "name") == []
    assert values("PID|1||0000112234^^^100^A||XXXXXXXXXX^^^^^^S||19540503", "name", path="a.hl7") == []
    real = (
        '<patient><name><given>Ana</given><family>Ruiz</family></name><birthTime value="19840719"/></patient>'
    )
    assert values(real, "name", path="ccd.xml") == ["Ana", "Ruiz"]


@pytest.mark.parametrize(
    ("text", "category", "value"),
    [
        # A label of several words on a line of its own, and a possessive inside a label.
        ("Member ID: XGH884512377, group 004412", "health_plan", "XGH884512377"),
        ("Driver's license S48213977 (MA)", "license", "S48213977"),
        ("Patient's driver's license number: D48213977", "license", "D48213977"),
        # A value written in groups after its label is one value.
        ("MRN 0048 2913", "mrn", "0048 2913"),
        ("Patient Marisol Okonkwo, MRN 0048 2913, needs a reminder.", "mrn", "0048 2913"),
    ],
)
def test_labels_find_their_whole_value(text: str, category: str, value: str) -> None:
    assert (category, value) in found(text), found(text)


def test_a_number_after_an_mrn_is_not_joined_to_it() -> None:
    assert values("MRN 00482913 2 visits", "mrn") == ["00482913"]


def test_rule_descriptions_hold_no_value_a_detector_finds() -> None:
    # SARIF reports carry the descriptions: a report saved in a scanned tree must not report itself.
    descriptions = "\n".join(d.description for d in builtin_detectors()[0])
    assert found(descriptions) == []
