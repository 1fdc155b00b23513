"""Synthetic patient records rendered in many file styles, with the span of every planted value.

Every value comes from Faker (seeded) or from generators here; none is real. The styles deliberately
differ from the development benchmark (Kotlin, PHP, Rust, Swift, Elixir, C-CDA XML, TOML, INI,
protobuf text, GraphQL, clinical notes, e-mail threads...), so the tests check that detection rests on
general rules rather than on the shapes it was tuned on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from faker import Faker

LOCALES = ["en_US", "es_MX", "vi_VN", "zh_CN", "ar_AA", "hi_IN", "fr_FR", "de_DE", "pl_PL", "pt_BR", "ja_JP"]


@dataclass
class Record:
    first: str
    last: str
    dob: str
    ssn: str
    mrn: str
    phone: str
    email: str
    street: str
    city: str
    zip: str
    member_id: str
    admitted: str


@dataclass
class Sample:
    style: str
    text: str
    # (start, end, category) of every planted value, in code points
    truth: list[tuple[int, int, str]] = field(default_factory=list)


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _phone(rng: random.Random) -> str:
    npa = rng.choice([212, 305, 312, 415, 503, 617, 702, 808, 919, 971, 646, 210])
    return f"({npa}) {rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(2, 9)}-{rng.randint(1000, 9999)}"


def _email(rng: random.Random, faker: Faker) -> str:
    user = faker.user_name()
    local = user if user.isascii() else f"pt{rng.randint(10, 99)}"
    return (
        f"{local}{rng.randint(1, 99)}@{rng.choice(['gmail.com', 'yahoo.com', 'outlook.com', 'icloud.com'])}"
    )


def make_record(rng: random.Random, faker: Faker) -> Record:
    us = Faker("en_US")
    us.seed_instance(rng.randint(0, 10**9))
    zip_code = rng.choice(["10013", "94110", "60614", "73301", "33101", "98109", "02139", "80202"])
    return Record(
        first=faker.first_name(),
        last=faker.last_name(),
        dob=f"{rng.randint(1930, 2015)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        ssn=_ssn(rng),
        mrn=f"{rng.choice(['MRN', 'MR', ''])}{rng.randint(10**6, 10**10)}",
        phone=_phone(rng),
        email=_email(rng, faker),
        street=f"{rng.randint(10, 99999)} {us.street_name()}",
        city=us.city(),
        zip=zip_code,
        member_id=f"{rng.choice('ABCDEFGHJKW')}{rng.randint(10**8, 10**9 - 1)}",
        admitted=f"{rng.randint(2018, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    )


class Builder:
    """Appends text and remembers where planted values went."""

    def __init__(self, style: str) -> None:
        self.sample = Sample(style, "")
        self.parts: list[str] = []
        self.length = 0

    def text(self, chunk: str) -> Builder:
        self.parts.append(chunk)
        self.length += len(chunk)
        return self

    def value(self, chunk: str, category: str) -> Builder:
        self.sample.truth.append((self.length, self.length + len(chunk), category))
        return self.text(chunk)

    def build(self) -> Sample:
        self.sample.text = "".join(self.parts)
        return self.sample


def kotlin(r: Record) -> Sample:
    b = Builder("kotlin")
    b.text('class PatientFixtures {\n    val patient = Patient(\n        medicalRecordNumber = "').value(
        r.mrn, "mrn"
    )
    b.text('",\n        givenName = "').value(r.first, "name").text('",\n        familyName = "').value(
        r.last, "name"
    )
    b.text('",\n        birthDate = LocalDate.parse("').value(r.dob, "date").text(
        '"),\n        ssn = "'
    ).value(r.ssn, "ssn")
    b.text('",\n        homePhone = "').value(r.phone, "phone").text('",\n    )\n}\n')
    return b.build()


def php(r: Record) -> Sample:
    b = Builder("php")
    b.text("<?php\n$patient = [\n    'mrn' => '").value(r.mrn, "mrn").text("',\n    'first_name' => '").value(
        r.first, "name"
    )
    b.text("',\n    'last_name' => '").value(r.last, "name").text("',\n    'dob' => '").value(r.dob, "date")
    b.text("',\n    'email' => '").value(r.email, "email").text("',\n    'zip' => '").value(
        r.zip, "zip"
    ).text("',\n];\n")
    return b.build()


def rust(r: Record) -> Sample:
    b = Builder("rust")
    b.text('#[test]\nfn builds_patient() {\n    let p = Patient {\n        mrn: String::from("').value(
        r.mrn, "mrn"
    )
    b.text('"),\n        surname: "').value(r.last, "name").text('".into(),\n        date_of_birth: "').value(
        r.dob, "date"
    )
    b.text('".into(),\n        member_id: "').value(r.member_id, "health_plan").text('".into(),\n    };\n}\n')
    return b.build()


def swift(r: Record) -> Sample:
    b = Builder("swift")
    b.text('let patient = Patient(\n    firstName: "').value(r.first, "name").text(
        '",\n    lastName: "'
    ).value(r.last, "name")
    b.text('",\n    dateOfBirth: "').value(r.dob, "date").text('",\n    phoneNumber: "').value(
        r.phone, "phone"
    )
    b.text('",\n    streetAddress: "').value(r.street, "address").text('"\n)\n')
    return b.build()


def elixir(r: Record) -> Sample:
    b = Builder("elixir")
    b.text('@patient %{\n  mrn: "').value(r.mrn, "mrn").text('",\n  full_name: "').value(
        f"{r.first} {r.last}", "name"
    )
    b.text('",\n  birthdate: ~D[').value(r.dob, "date").text('],\n  ssn: "').value(r.ssn, "ssn").text(
        '"\n}\n'
    )
    return b.build()


def ccda(r: Record) -> Sample:
    b = Builder("ccda")
    b.text('<ClinicalDocument xmlns="urn:hl7-org:v3">\n  <recordTarget>\n    <patientRole>\n')
    b.text('      <id root="2.16.840.1.113883.4.1" extension="').value(r.ssn, "ssn").text('"/>\n')
    b.text('      <addr use="HP">\n        <streetAddressLine>').value(r.street, "address")
    b.text("</streetAddressLine>\n        <city>").value(r.city, "address").text(
        "</city>\n        <postalCode>"
    )
    b.value(r.zip, "zip").text(
        "</postalCode>\n      </addr>\n      <patient>\n        <name>\n          <given>"
    )
    b.value(r.first, "name").text("</given>\n          <family>").value(r.last, "name").text(
        "</family>\n        </name>\n"
    )
    b.text('        <birthTime value="').value(r.dob.replace("-", ""), "date").text('"/>\n')
    b.text("      </patient>\n    </patientRole>\n  </recordTarget>\n</ClinicalDocument>\n")
    return b.build()


def toml_fixture(r: Record) -> Sample:
    b = Builder("toml")
    b.text('[fixtures.patient]\nchart_number = "').value(r.mrn, "mrn").text('"\nlegal_name = "')
    b.value(f"{r.first} {r.last}", "name").text('"\nbirth_date = "').value(r.dob, "date")
    b.text('"\nmobile_phone = "').value(r.phone, "phone").text('"\n')
    return b.build()


def ini(r: Record) -> Sample:
    b = Builder("ini")
    b.text("[smoke_patient]\nmrn = ").value(r.mrn, "mrn").text("\nfirst_name = ").value(r.first, "name")
    b.text("\nlast_name = ").value(r.last, "name").text("\ndob = ").value(r.dob, "date")
    b.text("\nssn = ").value(r.ssn, "ssn").text("\n")
    return b.build()


def protobuf_text(r: Record) -> Sample:
    b = Builder("textproto")
    b.text('patient {\n  mrn: "').value(r.mrn, "mrn").text('"\n  given_name: "').value(r.first, "name")
    b.text('"\n  family_name: "').value(r.last, "name").text('"\n  birth_date: "').value(r.dob, "date")
    b.text('"\n  contact { email: "').value(r.email, "email").text('" }\n}\n')
    return b.build()


def graphql(r: Record) -> Sample:
    b = Builder("graphql")
    b.text('mutation {\n  registerPatient(input: {\n    mrn: "').value(r.mrn, "mrn").text(
        '"\n    firstName: "'
    )
    b.value(r.first, "name").text('"\n    lastName: "').value(r.last, "name").text('"\n    dateOfBirth: "')
    b.value(r.dob, "date").text('"\n    phone: "').value(r.phone, "phone").text('"\n  }) { id }\n}\n')
    return b.build()


def clinical_note(r: Record) -> Sample:
    b = Builder("note")
    b.text("Discharge summary\n\nPatient: ").value(f"{r.first} {r.last}", "name").text("\nMRN: ").value(
        r.mrn, "mrn"
    )
    b.text("\nDOB: ").value(r.dob, "date").text("\nAdmitted: ").value(r.admitted, "date")
    b.text("\n\nThe patient was seen for chest pain. Follow up by phone at ").value(r.phone, "phone")
    b.text(".\nHome address: ").value(r.street, "address").text(", ").value(r.city, "address").text(", NY ")
    b.value(r.zip, "zip").text("\n")
    return b.build()


def email_thread(r: Record) -> Sample:
    b = Builder("email")
    b.text("From: triage@clinic.example\nSubject: callback needed\n\nHi team,\n\nCan someone call back pt ")
    b.value(f"{r.first} {r.last}", "name").text(" (DOB ").value(r.dob, "date").text(", MRN ").value(
        r.mrn, "mrn"
    )
    b.text(")? Her SSN on file is ").value(r.ssn, "ssn").text(" and her member id ").value(
        r.member_id, "health_plan"
    )
    b.text(" was rejected.\n\nThanks\n")
    return b.build()


def structured_log(r: Record) -> Sample:
    b = Builder("logfmt")
    b.text('level=warn msg="eligibility mismatch" patient_mrn=').value(r.mrn, "mrn").text(" patient_dob=")
    b.value(r.dob, "date").text(" member_id=").value(r.member_id, "health_plan").text(" client_ip=")
    b.value("73.22.181.9", "ip").text(" status=409\n")
    return b.build()


def r_dataframe(r: Record) -> Sample:
    b = Builder("r")
    b.text('patients <- data.frame(\n  mrn = c("').value(r.mrn, "mrn").text('"),\n  last_name = c("')
    b.value(r.last, "name").text('"),\n  dob = as.Date(c("').value(r.dob, "date").text('"))\n)\n')
    return b.build()


def yaml_list(r: Record) -> Sample:
    b = Builder("yaml")
    b.text("patients:\n  - mrn: ").value(r.mrn, "mrn").text("\n    name: ").value(
        f"{r.first} {r.last}", "name"
    )
    b.text("\n    dob: ").value(r.dob, "date").text("\n    email: ").value(r.email, "email")
    b.text("\n    address:\n      line: ").value(r.street, "address").text("\n      postal_code: ")
    b.value(r.zip, "zip").text("\n")
    return b.build()


def x12_claim(r: Record) -> Sample:
    b = Builder("x12")
    b.text("ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *240102*0830*^*00501*")
    b.text("000000905*0*P*:~\nST*837*0001~\nNM1*85*2*RIVERSIDE CLINIC*****XX*1234567893~\nHL*2*1*22*0~\n")
    b.text("NM1*IL*1*").value(r.last.upper(), "name").text("*").value(r.first.upper(), "name")
    b.text("****MI*").value(r.member_id, "health_plan").text("~\nN3*").value(r.street.upper(), "address")
    b.text("~\nN4*").value(r.city.upper(), "address").text("*OR*").value(r.zip, "zip")
    b.text("~\nDMG*D8*").value(r.dob.replace("-", ""), "date").text("*F~\nREF*SY*")
    b.value(r.ssn.replace("-", ""), "ssn").text("~\nSE*9*0001~\n")
    return b.build()


def vcard(r: Record) -> Sample:
    b = Builder("vcard")
    b.text("BEGIN:VCARD\nVERSION:4.0\nFN:").value(f"{r.first} {r.last}", "name")
    b.text("\nBDAY:").value(r.dob.replace("-", ""), "date").text("\nTEL;TYPE=cell:").value(r.phone, "phone")
    b.text("\nEMAIL:").value(r.email, "email").text("\nNOTE:MRN ").value(r.mrn, "mrn").text("\nEND:VCARD\n")
    return b.build()


def java_properties(r: Record) -> Sample:
    b = Builder("properties")
    b.text("# smoke-test patient\nsmoke.patient.mrn=").value(r.mrn, "mrn")
    b.text("\nsmoke.patient.lastName=").value(r.last, "name").text("\nsmoke.patient.dob=").value(
        r.dob, "date"
    )
    b.text("\nsmoke.patient.ssn=").value(r.ssn, "ssn").text("\n")
    return b.build()


def shell_script(r: Record) -> Sample:
    b = Builder("shell")
    b.text('#!/bin/sh\nexport TEST_PATIENT_MRN="').value(r.mrn, "mrn").text('"\nexport TEST_PATIENT_NAME="')
    b.value(f"{r.first} {r.last}", "name").text('"\ncurl -d \'{"dob":"').value(r.dob, "date")
    b.text('","ssn":"').value(r.ssn, "ssn").text("\"}' $API/patients\n")
    return b.build()


def event_log(r: Record) -> Sample:
    b = Builder("jsonl")
    b.text('{"ts":"2024-05-01T10:00:00Z","event":"lookup","patient":{"id":"').value(r.mrn, "mrn")
    b.text('","full_name":"').value(f"{r.first} {r.last}", "name").text('","birth_date":"')
    b.value(r.dob, "date").text('"},"ip":"').value("98.12.44.201", "ip").text('"}\n')
    return b.build()


def scala(r: Record) -> Sample:
    b = Builder("scala")
    b.text('val p = Patient(mrn = "').value(r.mrn, "mrn").text('", givenName = "').value(r.first, "name")
    b.text('", familyName = "').value(r.last, "name").text('", dob = LocalDate.parse("').value(r.dob, "date")
    b.text('"))\n')
    return b.build()


def chat_export(r: Record) -> Sample:
    b = Builder("slack")
    b.text('{"type":"message","user":"U024BE7LH","text":"heads up: pt ').value(f"{r.first} {r.last}", "name")
    b.text(" DOB ").value(r.dob, "date").text(" called about a refill, cb ").value(r.phone, "phone")
    b.text('","ts":"1704189600.000200"}\n')
    return b.build()


def lua_table(r: Record) -> Sample:
    b = Builder("lua")
    b.text('local patient = {\n  mrn = "').value(r.mrn, "mrn").text('",\n  first_name = "').value(
        r.first, "name"
    )
    b.text('",\n  last_name = "').value(r.last, "name").text('",\n  dob = "').value(r.dob, "date").text(
        '",\n}\n'
    )
    return b.build()


def html_form(r: Record) -> Sample:
    b = Builder("html")
    b.text('<form>\n  <input name="mrn" value="').value(r.mrn, "mrn").text('">\n  <input name="dob" value="')
    b.value(r.dob, "date").text('">\n  <input name="last_name" value="').value(r.last, "name")
    b.text('">\n</form>\n')
    return b.build()


def csharp(r: Record) -> Sample:
    year, month, day = (int(part) for part in r.dob.split("-"))
    b = Builder("csharp")
    b.text('var patient = new Patient\n{\n    GivenName = "').value(r.first, "name")
    b.text('",\n    FamilyName = "').value(r.last, "name").text('",\n    DateOfBirth = new DateTime(')
    b.value(f"{year}, {month}, {day}", "date").text('),\n    PhoneNumber = "').value(r.phone, "phone")
    b.text('",\n};\n')
    return b.build()


def factory_bot(r: Record) -> Sample:
    b = Builder("factory_bot")
    b.text('FactoryBot.define do\n  factory :patient do\n    first_name { "').value(r.first, "name")
    b.text('" }\n    last_name { "').value(r.last, "name").text('" }\n    date_of_birth { Date.parse("')
    b.value(r.dob, "date").text('") }\n    mrn { "').value(r.mrn, "mrn").text('" }\n  end\nend\n')
    return b.build()


def markdown_ticket(r: Record) -> Sample:
    year, month, day = r.dob.split("-")
    b = Builder("markdown")
    b.text("## Repro\n\n| Patient | DOB | MRN |\n|---|---|---|\n| ").value(f"{r.first} {r.last}", "name")
    b.text(" | ").value(f"{month}/{day}/{year}", "date").text(" | ").value(r.mrn, "mrn").text(" |\n")
    return b.build()


STYLES: list[Callable[[Record], Sample]] = [
    kotlin, php, rust, swift, elixir, ccda, toml_fixture, ini, protobuf_text, graphql, clinical_note,
    email_thread, structured_log, r_dataframe, yaml_list, x12_claim, vcard, java_properties, shell_script,
    event_log, scala, chat_export, lua_table, html_form, csharp, factory_bot, markdown_ticket,
]  # fmt: skip


def samples(count: int, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        faker = Faker(LOCALES[index % len(LOCALES)])
        faker.seed_instance(rng.randint(0, 10**9))
        out.append(STYLES[index % len(STYLES)](make_record(rng, faker)))
    return out


# Ordinary code with nothing personal in it: every finding here is a false positive.
CLEAN = [
    'def total(items):\n    name = "utf-8"\n    first = items[0]\n    return sum(i.price for i in items)\n',
    'const config = { name: "Build Pipeline", version: "2.3.1", date: "2024-01-05", timeout: 30000 };\n',
    "SELECT id, created_at FROM audit_events WHERE created_at >= '2023-01-01' ORDER BY id LIMIT 100;\n",
    "# Release 4.2.0 (2024-03-14)\n- Fixed retry of 503 responses (#1212)\n- Support phone: 1-800-555-0199\n",
    "server:\n  host: 10.0.4.12\n  port: 8443\n  upstream: 192.168.1.20:9000\nlog_level: info\n",
    'test("formats dates", () => {\n  expect(fmt("2020-02-29")).toBe("Feb 29, 2020");\n});\n',
    "<dependency>\n  <groupId>org.hl7.fhir</groupId>\n  <version>6.1.2</version>\n</dependency>\n",
    "CREATE TABLE patients (\n  id BIGSERIAL PRIMARY KEY,\n  mrn VARCHAR(16) NOT NULL,\n"
    "  dob DATE NOT NULL\n);\n",
    'AUTHOR = "Grace Hopper <grace@navy.example>"\nLICENSE = "MIT"\nVERSION = (1, 4, 2)\n',
    'for i in range(10):\n    print(f"iteration {i}: value={i * 3.14159:.3f}")\n',
    'class PatientSearchForm(forms.Form):\n    last_name = forms.CharField(label="Last Name")\n'
    '    dob = forms.DateField(label="Date of birth")\n',
    "docker run -p 5432:5432 -e POSTGRES_PASSWORD=postgres postgres:16\n",
    '{"name": "@acme/portal", "version": "3.1.0", "license": "UNLICENSED", "private": true}\n',
    'mock_patient = {"mrn": "MRN-XXXXXX", "name": "Jane Doe", "dob": "1900-01-01", "ssn": "000-00-0000"}\n',
]
