"""Structure-aware detection: each supported format finds the planted values and nothing else."""

from __future__ import annotations

import pytest

from phiwarden.detect import scan_text
from tests.helpers import covered, found, values

# Values used across formats; all synthetic.
NAME_FIRST, NAME_LAST = "Marisol", "Okonkwo-Reyes"
DOB = "1984-07-19"
SSN = "518-42-7731"
MRN = "MRN-40981723"
PHONE = "(503) 246-6384"
EMAIL = "marisol.okonkwo84@gmail.com"
STREET = "4417 Larkspur Ln"
ZIP_CODE = "97217"


def assert_all_found(text: str, planted: list[str], *, path: str | None = None) -> None:
    missing = [v for v in planted if not covered(text, v, path=path)]
    assert not missing, f"not found: {missing}"


def test_json_record() -> None:
    text = (
        '{\n  "patient": {\n    "medicalRecordNumber": "'
        + MRN
        + '",\n    "givenName": "'
        + NAME_FIRST
        + '",\n'
        '    "familyName": "' + NAME_LAST + '",\n    "birthDate": "' + DOB + '",\n    "ssn": "' + SSN + '",\n'
        '    "email": "' + EMAIL + '",\n    "createdAt": "2024-05-01T10:00:00Z"\n  }\n}\n'
    )
    assert_all_found(text, [MRN, NAME_FIRST, NAME_LAST, DOB, SSN, EMAIL], path="fixtures/patient.json")
    assert not covered(text, "2024-05-01T10:00:00Z")  # a record timestamp is not about the person


def test_yaml_nested_record() -> None:
    text = f"smoke:\n  patient:\n    mrn: {MRN}\n    name: {NAME_FIRST} {NAME_LAST}\n    dob: {DOB}\n    zipcode: '{ZIP_CODE}'\n"
    assert_all_found(text, [MRN, f"{NAME_FIRST} {NAME_LAST}", DOB, ZIP_CODE], path="config/smoke.yaml")


def test_csv_header_driven() -> None:
    text = (
        "PatientId,LastName,FirstName,DOB,Street,City,Zip,Phone\r\n"
        f'{MRN},{NAME_LAST},{NAME_FIRST},{DOB},"{STREET}, Apt 4",Portland,{ZIP_CODE},{PHONE}\r\n'
        "MRN-55120987,Nakamura,Haruto,1990-02-11,12 Ash Ct,Salem,97301,(503) 399-4411\r\n"
    )
    assert_all_found(
        text,
        [MRN, NAME_LAST, NAME_FIRST, DOB, STREET, "Portland", ZIP_CODE, PHONE, "Haruto"],
        path="exports/census.csv",
    )


def test_tsv_and_unknown_columns() -> None:
    text = f"mrn\tsurname\tnotes\n{MRN}\t{NAME_LAST}\tcalled back 3 times\n"
    assert values(text, "name", path="out.tsv") == [NAME_LAST]
    assert not covered(text, "called back", path="out.tsv")


EMBEDDED_CSV = (
    "last_name,first_name,dob,mrn\nOkonkwo,Marisol,1984-07-12,00482913\nReyes,Tomas,1990-02-03,00591234\n"
)
EMBEDDED_VALUES = ["Okonkwo", "Marisol", "1984-07-12", "00482913", "Reyes", "Tomas", "1990-02-03", "00591234"]


@pytest.mark.parametrize(
    ("before", "after", "path", "prose"),
    [
        ("", "", None, True),
        ("x\n\n", "", None, True),  # the gateway's batch: parts joined by blank lines
        ("Here is the export, can you dedupe it?\n", "", None, True),
        ("Summarise this:\n```csv\n", "```\nThanks, and keep it short.\n", None, True),
        ("# Import notes\n\nThe clinic sent:\n\n```csv\n", "```\n", "docs/import.md", False),
        (
            "2026-12-07 10:00:01 INFO import started\n",
            "2026-12-07 10:00:02 INFO done\n",
            "logs/app.log",
            False,
        ),
        ("# exported 2026-12-07\n", "", "exports/patients.csv", False),
        ("intro\n", "", "notes.txt", False),
    ],
)
def test_a_delimited_table_is_read_at_any_line(
    before: str, after: str, path: str | None, prose: bool
) -> None:
    text = before + EMBEDDED_CSV + after
    findings = scan_text(text, path=path, prose=prose)
    spans = {text[f.start : f.end] for f in findings}
    assert set(EMBEDDED_VALUES) <= spans
    # Nothing outside the table: the table ends at the line that is not one of its rows.
    table_start = len(before)
    assert all(table_start <= f.start < table_start + len(EMBEDDED_CSV) for f in findings)


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_tables_of_each_delimiter_are_read_at_any_line(delimiter: str) -> None:
    text = "See below.\n" + EMBEDDED_CSV.replace(",", delimiter)
    assert {text[f.start : f.end] for f in scan_text(text, prose=True)} >= set(EMBEDDED_VALUES)


@pytest.mark.parametrize(
    "table",
    [
        # A row with an unquoted comma (an address) does not end the table: the rows after it count.
        "last_name,first_name,dob,mrn,address\nOkonkwo,Marisol,1984-07-12,00482913,9 Oak Ave, Boston MA\n"
        "Reyes,Tomas,1990-02-03,00591234,14 Elm St\n",
        # A short first row.
        "last_name,first_name,dob,mrn\nOkonkwo,Marisol,1984-07-12\nReyes,Tomas,1990-02-03,00591234\n",
        # Header and rows in separate text blocks (a request's parts are joined by a blank line).
        "last_name,first_name,dob,mrn\n\nOkonkwo,Marisol,1984-07-12,00482913\nReyes,Tomas,1990-02-03,00591234\n",
        # A trailing delimiter, and a format in parentheses after a name.
        "last_name,first_name,DOB (yyyy-mm-dd),mrn,\nOkonkwo,Marisol,1984-07-12,00482913,\n"
        "Reyes,Tomas,1990-02-03,00591234,\n",
    ],
)
def test_irregular_tables_after_other_text_are_read_to_their_end(table: str) -> None:
    text = "You are a coding agent.\n\nWhy does this import fail?\n" + table
    spans = {text[f.start : f.end] for f in scan_text(text, prose=True)}
    assert {"Okonkwo", "Marisol", "Reyes", "Tomas", "1990-02-03", "00591234"} <= spans


@pytest.mark.parametrize(
    "text",
    [
        # One PHI column name is not enough for a header further down.
        "notes\nmrn,count,total\n12345678,3,4\n",
        # Code that lists column names, and rows that do not match its width.
        'COLUMNS = (\n    "first_name", "last_name", "dob"\n)\nrow = parse(a, b)\n',
        # A header without rows of its width, then prose with commas.
        "The export has first_name, last_name, dob and mrn.\nOkonkwo, please call me back, thanks.\n",
        # A header line followed by a blank line: no table.
        "intro\nfirst_name,last_name,dob\n\nOkonkwo,Marisol,then\n",
    ],
)
def test_text_around_tables_is_not_read_as_one(text: str) -> None:
    assert scan_text(text, path="src/notes.md") == []


def test_sql_insert_maps_values_to_columns() -> None:
    text = (
        "INSERT INTO patients (mrn, first_name, last_name, dob, ssn) VALUES\n"
        f"  ('{MRN}', '{NAME_FIRST}', '{NAME_LAST}', DATE '{DOB}', '{SSN}'),\n"
        "  ('MRN-11223344', 'Jun', 'Park', STR_TO_DATE('03/14/1977', '%m/%d/%Y'), '402-11-9876');\n"
    )
    assert_all_found(
        text, [MRN, NAME_FIRST, NAME_LAST, SSN, "Jun", "Park", "03/14/1977", "402-11-9876"], path="seed.sql"
    )


def test_sql_insert_without_columns_takes_them_from_create_table() -> None:
    text = (
        "CREATE TABLE IF NOT EXISTS public.patients (\n  id SERIAL PRIMARY KEY,\n"
        "  first_name VARCHAR(100) NOT NULL,\n  last_name TEXT, dob DATE, mrn TEXT,\n"
        "  CONSTRAINT uq UNIQUE (mrn, dob)\n);\n"
        f"INSERT INTO patients VALUES (1, '{NAME_FIRST}', '{NAME_LAST}', '{DOB}', '40981811');\n"
    )
    assert_all_found(text, [NAME_FIRST, NAME_LAST, DOB, "40981811"], path="seed.sql")
    # Without the table's definition the values have no columns.
    assert found("INSERT INTO lookups VALUES (1, 'Alpha Beta', 'Gamma');\n", path="seed.sql") == []


def test_sql_copy_block() -> None:
    text = f"COPY public.patients (mrn, last_name, dob) FROM stdin;\n{MRN}\t{NAME_LAST}\t{DOB}\n\\.\n"
    assert_all_found(text, [MRN, NAME_LAST, DOB], path="dump.sql")


def test_consecutive_statements_are_each_read() -> None:
    inserts = (
        f"INSERT INTO patients (mrn, last_name) VALUES ('{MRN}', '{NAME_LAST}');\n"
        "INSERT INTO patients (dob, ssn) VALUES ('1977-03-14', '402-11-9876');\n"
    )
    assert_all_found(inserts, [MRN, NAME_LAST, "1977-03-14", "402-11-9876"], path="seed.sql")
    copies = (
        f"COPY patients (mrn, last_name) FROM stdin;\n{MRN}\t{NAME_LAST}\n\\.\n"
        "COPY patients (dob, ssn) FROM stdin;\n1977-03-14\t402-11-9876\n\\.\n"
    )
    assert_all_found(copies, [MRN, NAME_LAST, "1977-03-14", "402-11-9876"], path="dump.sql")


def test_hl7_message_in_a_file() -> None:
    text = (
        "MSH|^~\\&|EPIC|NORTHSIDE|BRIDGE|HOSP|20240102083000||ADT^A01|MSG00042|P|2.5.1\r"
        f"PID|1||40981723^^^NORTHSIDE^MR||{NAME_LAST.upper()}^{NAME_FIRST.upper()}||19840719|F|||"
        f"{STREET}^^Portland^OR^{ZIP_CODE}||(503)246-6384|||||77120431|518427731\r"
        "NK1|1|OKONKWO^DANIEL|SPO||(971)555-2671\r"
        "PV1|1|I|2W^204^A||||1234567893^WELBY^MARCUS^^^^^^NPI|" + "|" * 36 + "202401020800\r"
    )
    assert_all_found(
        text,
        [
            "40981723",
            NAME_LAST.upper(),
            "19840719",
            STREET,
            "Portland",
            ZIP_CODE,
            "(503)246-6384",
            "518427731",
            "OKONKWO^DANIEL",
            "202401020800",
        ],
        path="adt.hl7",
    )
    assert not covered(text, "20240102083000")  # message timestamp
    assert not covered(text, "MSG00042")  # message control id
    assert not covered(text, "1234567893")  # the attending physician's NPI


def test_hl7_explicit_nulls_do_not_end_a_segment() -> None:
    # `""` is HL7's "delete this value", not the end of a quoted test string.
    text = (
        'msg = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\\r'
        f'IN1|1|PLAN1|""|ACME INSURANCE||||||||||||{NAME_LAST.upper()}^{NAME_FIRST.upper()}|SPO|19510203"\n'
    )
    assert_all_found(text, [f"{NAME_LAST.upper()}^{NAME_FIRST.upper()}"], path="test_adt.py")


def test_hl7_inside_a_test_string() -> None:
    text = (
        "const msg = [\n"
        "  'MSH|^~\\\\&|LAB|ACME|||20231209085458||ORU^R01|884|P|2.5.1',\n"
        f"  'PID|1||99001122^^^ACME^MR||{NAME_LAST.upper()}^{NAME_FIRST.upper()}||19840719|F',\n"
        "].join('\\r');\n"
    )
    assert_all_found(text, ["99001122", NAME_LAST.upper(), "19840719"], path="adt.test.js")


def test_x12_837_reports_the_patient_loop_not_the_providers() -> None:
    text = (
        "ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *240102*0830*^*00501*000000042*0*P*:~\n"
        "ST*837*0001*005010X222A1~\n"
        "NM1*85*2*NORTHSIDE CLINIC*****XX*1234567893~\n"
        "N3*100 HOSPITAL DR~\n"
        "N4*SALEM*OR*97301~\n"
        "HL*2*1*22*0~\n"
        f"NM1*IL*1*{NAME_LAST.upper()}*{NAME_FIRST.upper()}****MI*XJH884120011~\n"
        f"N3*{STREET.upper()}~\n"
        f"N4*PORTLAND*OR*{ZIP_CODE}~\n"
        "DMG*D8*19840719*F~\n"
        "REF*SY*518427731~\n"
        "CLM*PCN40981723*125***11:B:1*Y*A*Y*I~\n"
        "DTP*472*RD8*20240102-20240104~\n"
        "SE*12*0001~\n"
    )
    assert_all_found(
        text,
        [NAME_LAST.upper(), NAME_FIRST.upper(), "XJH884120011", STREET.upper(), "PORTLAND", ZIP_CODE,
         "19840719", "518427731", "PCN40981723", "20240102", "20240104"],
        path="claim.837",
    )  # fmt: skip
    assert not covered(text, "100 HOSPITAL DR")  # the billing provider's address
    assert not covered(text, "97301")
    assert not covered(text, "1234567893")  # the provider's NPI


def test_x12_segments_inside_a_test_string() -> None:
    text = f'const seg = "NM1*QC*1*{NAME_LAST.upper()}*{NAME_FIRST.upper()}~DMG*D8*19840719*F~";\n'
    assert_all_found(text, [NAME_LAST.upper(), "19840719"], path="remit.test.ts")


def test_generic_id_key_named_by_its_object() -> None:
    text = (
        '{"event":"lookup","patient":{"id":"684076014","full_name":"Ana Lima"}}\n'
        '{"event":"lookup","member": {"plan":"gold", "id": "XJH88412"}}\n'
        '{"event":"ship","order":{"id":"7788123344"}}\n'
    )
    assert_all_found(text, ["684076014", "XJH88412"], path="events.jsonl")
    assert not covered(text, "7788123344")  # an order id says nothing about a person


def test_html_form_fields_are_named_by_attribute() -> None:
    text = (
        "<form>\n"
        '  <input name="mrn" value="A7781234">\n'
        f'  <input type="text" value="{DOB}" id="dob">\n'
        f'  <input name="last_name" value="{NAME_LAST}">\n'
        '  <input name="submit" value="Save record">\n'
        "</form>\n"
    )
    assert_all_found(text, ["A7781234", DOB, NAME_LAST], path="intake.html")
    assert not covered(text, "Save record")


def test_fhir_identifiers_and_telecom_by_system() -> None:
    text = """{
  "resourceType": "Patient",
  "identifier": [
    {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
     "system": "urn:oid:1.2.3", "value": "X7731-4401"},
    {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "518-42-7731"},
    {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
  ],
  "name": [{"family": "Okonkwo-Reyes", "given": ["Marisol"]}],
  "telecom": [{"system": "phone", "value": "503-246-6384", "use": "home"}],
  "birthDate": "1984-07-19"
}"""
    categories = {v: c for c, v in found(text, path="patient.json")}
    assert categories.get("X7731-4401") == "mrn"
    assert categories.get("518-42-7731") == "ssn"
    assert categories.get("503-246-6384") == "phone"
    assert "1234567893" not in categories
    assert_all_found(text, ["Okonkwo-Reyes", "Marisol", "1984-07-19"])


def test_fhir_encounter_period_and_device_serial() -> None:
    text = """{"resourceType": "Bundle", "entry": [
 {"resource": {"resourceType": "Encounter", "period": {"start": "2024-01-02T08:00:00Z", "end": "2024-01-05T11:30:00Z"}}},
 {"resource": {"resourceType": "Device", "serialNumber": "PMK4471902X"}},
 {"resource": {"resourceType": "Organization", "period": {"start": "2001-01-01"}}}
]}"""
    assert covered(text, "2024-01-02T08:00:00Z")
    assert covered(text, "PMK4471902X")
    assert not covered(text, "2001-01-01")


def test_every_given_name_of_a_list() -> None:
    text = f'{{"name": [{{"family": "{NAME_LAST}", "given": [ "{NAME_FIRST}",\n  "Lucía" , "Ana"]}}], "birthDate": "{DOB}"}}'
    assert_all_found(text, [NAME_LAST, NAME_FIRST, "Lucía", "Ana", DOB], path="patient.json")
    escaped = f'"{{\\"given\\": [\\"{NAME_FIRST}\\", \\"Lucía\\"], \\"mrn\\": \\"{MRN}\\"}}"'
    assert_all_found(escaped, [NAME_FIRST, "Lucía", MRN], path="test_api.py")


def test_yaml_lists_of_bare_names() -> None:
    block = (
        f"patient:\n  name:\n    given:\n      - {NAME_FIRST}\n      - 'Lucía'\n      - Ana  # middle\n"
        f"    family: {NAME_LAST}\n  birth_date: {DOB}\n"
    )
    assert_all_found(block, [NAME_FIRST, "Lucía", "Ana", NAME_LAST, DOB], path="patient.yml")
    flow = f"given: [{NAME_FIRST}, Lucía ,Ana]\nfamily: {NAME_LAST}\nmrn: {MRN}\n"
    assert_all_found(flow, [NAME_FIRST, "Lucía", "Ana", NAME_LAST, MRN], path="patient.yml")
    # The list ends where the indentation or the dash does.
    assert not covered(block + "steps:\n  - Build\n", "Build", path="ci.yml")


def test_every_string_of_a_list_built_by_a_call() -> None:
    text = (
        f'patients <- data.frame(name = c("{NAME_FIRST} {NAME_LAST}", "Halvard Lindqvist"),\n'
        f'  dob = as.Date(c("{DOB}", "1966-12-01")))\n'
    )
    assert_all_found(text, [NAME_FIRST, "Halvard Lindqvist", DOB, "1966-12-01"], path="cohort.R")
    kotlin = f'val names = listOf("{NAME_FIRST}", "Lucía")\nval mrn = "{MRN}"\n'
    assert_all_found(kotlin, [NAME_FIRST, "Lucía", MRN], path="Fixtures.kt")


def test_names_in_a_query_string() -> None:
    text = f"GET /api/patients?patient_name={NAME_FIRST}+Okafor&dob={DOB} 200\n"
    assert_all_found(text, [f"{NAME_FIRST}+Okafor", DOB], path="access.log")


def test_sql_typed_date_literals() -> None:
    text = f"SELECT * FROM patients WHERE last_name = 'Hargreaves' AND dob = DATE '{DOB}';\n"
    assert_all_found(text, ["Hargreaves", DOB], path="query.sql")


def test_erb_values_in_rails_fixtures() -> None:
    text = (
        f"ana:\n  mrn: {MRN}\n  dob: <%= Date.new(1979, 3, 14) %>\n"
        '  admitted_at: <%= Time.zone.parse("2023-02-11 08:15") %>\n  created_at: <%= 3.days.ago %>\n'
    )
    assert_all_found(
        text, [MRN, "Date.new(1979, 3, 14)", "2023-02-11 08:15"], path="test/fixtures/patients.yml"
    )


def test_headers_in_other_languages_with_or_without_accents() -> None:
    french = "nom;prénom;date_de_naissance\nLefèvre;Amélie;03/09/1979\n"
    assert_all_found(french, ["Lefèvre", "Amélie", "03/09/1979"], path="export.csv")
    portuguese = "nome,sobrenome,data_nascimento,celular\nJoão,Carvalho,1988-05-30,(11) 98765-4321\n"
    assert_all_found(portuguese, ["João", "Carvalho", "1988-05-30", "(11) 98765-4321"], path="pacientes.csv")
    german = "Nachname;Vorname;Geburtsdatum;Straße\nMüller;Jürgen;14.03.1961;Hauptstraße 5\n"
    assert_all_found(german, ["Müller", "Jürgen", "14.03.1961", "Hauptstraße 5"], path="export.csv")
    spanish = "nombre,teléfono,fecha_nacimiento\nLucía,030 5528 1190,1985-07-22\n"
    assert_all_found(spanish, ["Lucía", "030 5528 1190", "1985-07-22"], path="pacientes.csv")


def test_dicom_json_elements_by_tag() -> None:
    text = (
        '{"00080060": {"vr": "CS", "Value": ["CT"]},\n'
        ' "00080090": {"vr": "PN", "Value": [{"Alphabetic": "Okafor^Chidi"}]},\n'
        ' "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Yamamoto^Keiko", "Ideographic": "山本^恵子"}]},\n'
        ' "00100020": {"vr": "LO", "Value": ["MRN77120"]},\n'
        ' "00100030": {"vr": "DA", "Value": ["19690412"]},\n'
        ' "00102154": {"vr": "SH", "Value": ["(503) 246-6384"]}}\n'
    )
    assert_all_found(text, ["Yamamoto^Keiko", "山本^恵子", "MRN77120", "19690412", PHONE], path="study.json")
    # The modality and the referring physician are not the patient's.
    assert not covered(text, "Okafor^Chidi", path="study.json")
    assert not covered(text, '"CT"', path="study.json")


def test_delimited_exports_named_txt_are_read_by_their_header() -> None:
    text = "nome|data_nascimento|cpf\nJoaquim Souza Pereira|24/02/1978|003.258.862-24\n"
    assert_all_found(text, ["Joaquim Souza Pereira", "24/02/1978", "003.258.862-24"], path="pacientes_sp.txt")
    assert found("Release notes | 2024-01-02 | v1.2\nfixed | crash | on start\n", path="NOTES.txt") == []


def test_sas_inline_data_by_the_input_statement() -> None:
    program = (
        "data patients;\n  input mrn $ first $ last $ dob :yymmdd10. visits;\n  format dob yymmdd10.;\n"
        f"  datalines;\n40981723 {NAME_FIRST} Okafor {DOB} 3\n00481224 Yuki Nakamura 1989-11-27 1\n;\nrun;\n"
        "data visits;\n  input site $ count;\n  datalines;\nBOSTON 12\n;\nrun;\n"
    )
    assert_all_found(
        program, ["40981723", NAME_FIRST, "Okafor", DOB, "Yuki", "Nakamura", "1989-11-27"], path="load.sas"
    )
    assert not covered(program, "BOSTON", path="load.sas")


def test_matlab_date_numbers() -> None:
    assert_all_found(
        "patient.dob = datenum(1958, 6, 21);\npatient.mrn = 'MRN00991234';\n", ["1958, 6, 21"], path="p.m"
    )


def test_synthea_patients_csv() -> None:
    text = (
        "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,ADDRESS,CITY,STATE,ZIP\n"
        "1d604da9-9a81-4ba9-80c2-de3375d59b40,1989-05-25,,518-42-7731,S99984236,X19277260X,Mr.,"
        "José Eduardo181,Gómez206,,,427 Balistreri Way Unit 19,Chicopee,Massachusetts,01013\n"
    )
    planted = ["1989-05-25", "518-42-7731", "S99984236", "X19277260X", "José Eduardo181", "Gómez206"]
    assert_all_found(text, planted, path="output/csv/patients.csv")
    assert [f for f in scan_text(text, path="output/csv/patients.csv") if f.line == 1] == []
    assert found('drivers = ["S99984236", "nvidia"]\n', path="setup.py") == []


def test_synthea_numbers_its_names() -> None:
    text = '{"resourceType": "Patient", "name": [{"family": "Bergnaum523", "given": ["Abe604", "Lucas"]}], "birthDate": "1968-09-12"}'
    assert_all_found(text, ["Bergnaum523", "Abe604", "Lucas", "1968-09-12"], path="synthea/patient.json")
    assert found('{"first_name": "User1", "last_name": "Test2", "dob": "1968-09-12"}', path="p.json") == [
        ("date", "1968-09-12")
    ]


def test_fhir_xml_and_ccda() -> None:
    fhir_xml = '<Patient><name><family value="Okonkwo-Reyes"/><given value="Marisol"/></name><birthDate value="1984-07-19"/></Patient>'
    assert_all_found(fhir_xml, ["Okonkwo-Reyes", "Marisol", "1984-07-19"], path="patient.xml")
    ccda = (
        '<recordTarget><patientRole><id root="2.16.840.1.113883.4.1" extension="518-42-7731"/>'
        '<telecom use="HP" value="tel:+1-503-246-6384"/><patient><name><given>Marisol</given>'
        '<family>Okonkwo-Reyes</family></name><birthTime value="19840719"/></patient></patientRole></recordTarget>'
    )
    assert_all_found(
        ccda, ["518-42-7731", "+1-503-246-6384", "Marisol", "Okonkwo-Reyes", "19840719"], path="ccd.xml"
    )
    # The facility's own MRN under its own OID, and ids outside the patient role (the document's).
    facility = (
        '<ClinicalDocument><id extension="TT988" root="2.16.840.1.113883.19.5.99999.1"/>'
        '<recordTarget><patientRole><id extension="40981723" root="1.2.840.114350.1.13.324.2.7.5.737384.14"/>'
        "</patientRole></recordTarget></ClinicalDocument>"
    )
    assert values(facility, "mrn", path="ccd.xml") == ["40981723"]
    assert not covered(facility, "TT988", path="ccd.xml")


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (
            "test_intake.py",
            f'payload = dict(first_name="{NAME_FIRST}", last_name="{NAME_LAST}", dob="{DOB}", ssn="{SSN}")',
        ),
        (
            "intake.test.ts",
            f"const p = {{ firstName: '{NAME_FIRST}', lastName: '{NAME_LAST}', dob: '{DOB}', ssn: '{SSN}' }};",
        ),
        (
            "PatientTest.java",
            f'Patient.builder().firstName("{NAME_FIRST}").lastName("{NAME_LAST}").dob(LocalDate.parse("{DOB}")).ssn("{SSN}");',
        ),
        (
            "patient_test.go",
            f'p := Patient{{FirstName: "{NAME_FIRST}", LastName: "{NAME_LAST}", Dob: "{DOB}", SSN: "{SSN}"}}',
        ),
        (
            "PatientTests.cs",
            f'var p = new Patient {{ FirstName = "{NAME_FIRST}", LastName = "{NAME_LAST}", Dob = "{DOB}", Ssn = "{SSN}" }};',
        ),
        (
            "patient_spec.rb",
            f"let(:p) {{ {{ first_name: '{NAME_FIRST}', last_name: '{NAME_LAST}', dob: '{DOB}', ssn: '{SSN}' }} }}",
        ),
        (
            "PatientTest.php",
            f"$p = ['first_name' => '{NAME_FIRST}', 'last_name' => '{NAME_LAST}', 'dob' => '{DOB}', 'ssn' => '{SSN}'];",
        ),
        (
            "patient.rs",
            f'let p = Patient {{ first_name: "{NAME_FIRST}".into(), last_name: "{NAME_LAST}".into(), dob: "{DOB}".into(), ssn: "{SSN}".into() }};',
        ),
        (
            "Patient.kt",
            f'val p = Patient(firstName = "{NAME_FIRST}", lastName = "{NAME_LAST}", dob = "{DOB}", ssn = "{SSN}")',
        ),
    ],
)
def test_source_code_literals(path: str, source: str) -> None:
    assert_all_found(source, [NAME_FIRST, NAME_LAST, DOB, SSN], path=path)


def test_date_constructors_anchor_a_record() -> None:
    # The only identifier is a date built by a constructor; it makes the names a record.
    csharp = (
        f'var p = new Patient\n{{\n    GivenName = "{NAME_FIRST}",\n    FamilyName = "{NAME_LAST}",\n'
        "    DateOfBirth = new DateTime(1984, 7, 19),\n}};\n"
    )
    assert_all_found(csharp, [NAME_FIRST, NAME_LAST, "1984, 7, 19"], path="PatientTests.cs")
    python = f"make_patient(first_name='{NAME_FIRST}', birth_date=datetime.date(1984, 7, 19))\n"
    assert_all_found(python, [NAME_FIRST, "1984, 7, 19"], path="test_intake.py")
    rust = (
        f'Patient {{ first_name: "{NAME_FIRST}".into(), last_name: "{NAME_LAST}".into(),\n'
        "    dob: NaiveDate::from_ymd_opt(1984, 7, 19).unwrap(),\n"
        "    admitted: Date::from_calendar_date(2024, Month::March, 2)? }\n"
    )
    assert_all_found(rust, [NAME_FIRST, NAME_LAST, "1984, 7, 19"], path="tests/fixtures.rs")


def test_ruby_blocks_hold_values_and_composite_literals_do_not() -> None:
    factory = (
        f'factory :patient do\n  first_name {{ "{NAME_FIRST}" }}\n  last_name {{ "{NAME_LAST}" }}\n'
        f'  date_of_birth {{ Date.parse("{DOB}") }}\n  mrn {{ "{MRN}" }}\nend\n'
    )
    assert_all_found(factory, [NAME_FIRST, NAME_LAST, DOB, MRN], path="spec/factories/patients.rb")
    dated = (
        f'factory :patient do\n  first_name {{ "{NAME_FIRST}" }}\n  dob {{ Date.new(1984, 7, 19) }}\nend\n'
    )
    assert_all_found(dated, [NAME_FIRST, "Date.new(1984, 7, 19)"], path="spec/factories/patients.rb")
    assert found("first_name { Faker::Name.first_name }\nssn { generate(:ssn) }\n", path="f.rb") == []
    assert found("dob { 45.years.ago }\nretries { Integer(3) }\n", path="f.rb") == []


def test_parametrized_test_rows_are_records() -> None:
    text = (
        '@pytest.mark.parametrize("name,dob,ssn", [\n'
        f'    ("{NAME_FIRST} {NAME_LAST}", "{DOB}", "{SSN}"),\n'
        '    pytest.param("Haruto Nakamura", "1990-02-11", "611-20-4417", id="second"),\n'
        "])\n"
        "def test_match(name, dob, ssn):\n    assert lookup(name, dob, ssn)\n"
    )
    planted = [f"{NAME_FIRST} {NAME_LAST}", DOB, SSN, "Haruto Nakamura", "1990-02-11", "611-20-4417"]
    assert_all_found(text, planted, path="tests/test_match.py")
    single = f'@pytest.mark.parametrize("dob", ["{DOB}", "1990-02-11"])\n'
    assert_all_found(single, [DOB, "1990-02-11"], path="tests/test_dob.py")
    assert found('@pytest.mark.parametrize("encoding,size", [("utf-8", 10), ("latin-1", 20)])\n') == []


def test_go_table_driven_tests_are_records() -> None:
    text = (
        "tests := []struct {\n\tname string\n\tmrn, dob string\n}{\n"
        f'\t{{"{NAME_FIRST} {NAME_LAST}", "40981723", "{DOB}"}},\n'
        '\t{"Haruto Nakamura", "40981724", `1990-02-11`},\n}\n'
    )
    planted = [f"{NAME_FIRST} {NAME_LAST}", "40981723", DOB, "Haruto Nakamura", "40981724", "1990-02-11"]
    assert_all_found(text, planted, path="lookup_test.go")
    cases = 'tests := []struct{ name string; input string; want int }{\n\t{"Simple Case", "abc", 3},\n}\n'
    assert found(cases, path="len_test.go") == []


def test_objective_c_strings() -> None:
    text = f'NSDictionary *p = @{{@"firstName": @"{NAME_FIRST}", @"lastName": @"{NAME_LAST}", @"dob": @"{DOB}"}};\n'
    assert_all_found(text, [NAME_FIRST, NAME_LAST, DOB], path="PatientTests.m")


def test_labels_in_other_languages_and_day_first_dates() -> None:
    spanish = f"Paciente: {NAME_FIRST} {NAME_LAST}\nFecha de nacimiento: 19/07/1984\nTeléfono: {PHONE}\n"
    assert_all_found(spanish, [f"{NAME_FIRST} {NAME_LAST}", "19/07/1984", PHONE], path="caso.md")
    german = f"Patient: {NAME_FIRST} {NAME_LAST}\nGeburtsdatum: 19.07.1984\nVersichertennummer: J273877722\n"
    assert_all_found(german, [f"{NAME_FIRST} {NAME_LAST}", "19.07.1984", "J273877722"], path="fall.txt")


def test_surnames_led_by_a_lowercase_particle() -> None:
    for surname in ("da Cruz", "van der Berg", "de la Fuente"):
        text = f'{{"mrn": "{MRN}", "given_name": "Ana", "family_name": "{surname}"}}'
        assert covered(text, surname), surname


def test_dotenv() -> None:
    text = f'SMOKE_PATIENT_MRN={MRN}\nSMOKE_PATIENT_NAME="{NAME_FIRST} {NAME_LAST}"\nSMOKE_PATIENT_DOB={DOB}\nLOG_LEVEL=info\n'
    assert_all_found(text, [MRN, f"{NAME_FIRST} {NAME_LAST}", DOB], path=".env.staging")
    assert found("LOG_LEVEL=info\nPORT=8080\n", path=".env") == []


def test_logs_key_value_json_and_stack_traces() -> None:
    logfmt = f'level=error msg="update failed" patient_mrn={MRN} patient_dob={DOB} client_ip=73.22.181.9 trace_id=4bf92f3577b34da6\n'
    assert_all_found(logfmt, [MRN, DOB, "73.22.181.9"], path="app.log")
    assert not covered(logfmt, "4bf92f3577b34da6")
    json_log = f'{{"ts":"2024-03-01T10:00:00Z","level":"warn","patient":{{"mrn":"{MRN}","ssn":"{SSN}","lastName":"{NAME_LAST}"}}}}\n'
    assert_all_found(json_log, [MRN, SSN, NAME_LAST], path="app.log")
    assert not covered(json_log, "2024-03-01T10:00:00Z")
    trace = (
        "ValueError: bad postal code\n  at normalize (/srv/app/intake.js:41:9)\n"
        f'  body: {{"givenName": "{NAME_FIRST}", "dob": "{DOB}", "email": "{EMAIL}"}},\n'
    )
    assert_all_found(trace, [NAME_FIRST, DOB, EMAIL], path="incident.txt")


def test_notebook_dataframe_output() -> None:
    text = (
        '{"cells": [{"outputs": [{"data": {"text/plain": [\n'
        '    "            mrn          name         dob\\n",\n'
        '    "0  MR4471190283  Lena Fischer  1979-03-02\\n",\n'
        '    "1  MR0912334551    Ade Bello  1966-11-30\\n"\n'
        "]}}]}]}\n"
    )
    assert_all_found(
        text, ["MR4471190283", "Lena Fischer", "1979-03-02", "Ade Bello", "1966-11-30"], path="cohort.ipynb"
    )


def test_pandas_headers_one_space_apart() -> None:
    # As pandas prints it: a header wider than its values stands one space from its neighbour.
    text = (
        '{"cells": [{"outputs": [{"data": {"text/plain": [\n'
        '    "    member_id first_name  last_name         dob\\n",\n'
        '    "0  W119203847      Keanu  Kahananui  1981-04-07\\n",\n'
        '    "1  W119203848       Mele     Fifita  1993-09-15\\n"\n'
        "]}}]}]}\n"
    )
    planted = ["W119203847", "Keanu", "Kahananui", "1981-04-07", "W119203848", "Mele", "Fifita", "1993-09-15"]
    assert_all_found(text, planted, path="claims.ipynb")
    prose = " Name and address\n1  Fill in the form at the front desk\n2  Wait for the nurse\n"
    assert found(prose, path="steps.txt") == []


def test_markdown_table_and_prose() -> None:
    table = "| MRN | Name | DOB |\n|---|---|---|\n| `MRN-40981723` | Marisol Okonkwo-Reyes | 1984-07-19 |\n"
    assert_all_found(table, ["MRN-40981723", "Marisol Okonkwo-Reyes", "1984-07-19"], path="ticket.md")
    # A column named for the person holds names, in a row that a record identifier anchors.
    person = "| Patient | DOB | MRN |\n|---|---|---|\n| Wulf Beier | 07/19/1984 | MRN-40981723 |\n"
    assert_all_found(person, ["Wulf Beier", "07/19/1984", "MRN-40981723"], path="docs/incident.md")
    prose = f"Steps: open the chart of patient **{NAME_FIRST} {NAME_LAST}** (MRN `{MRN}`), DOB {DOB}. The SMS went to 5032466384."
    assert_all_found(prose, [f"{NAME_FIRST} {NAME_LAST}", MRN, DOB, "5032466384"], path="docs/issue.md")


def test_free_text_comment_with_patient_context() -> None:
    text = f"# crashed for pt {NAME_FIRST} {NAME_LAST} (MRN {MRN}, DOB {DOB}); admitted 2024-01-02, discharged 2024-01-05\n"
    assert_all_found(
        text, [f"{NAME_FIRST} {NAME_LAST}", MRN, DOB, "2024-01-02", "2024-01-05"], path="intake.py"
    )


@pytest.mark.parametrize(
    "name",
    [
        "Nguyễn Thị Minh Khai",
        "Đặng Trí Khoa",
        "王秀英",
        "عالية عنزة",
        "श्यामला पाण्डेय",
        "José Ángel Pérez",
        "Siobhán O'Sullivan",
        "Małgorzata Wójcik",
        "مشرف بنو سعد بن ليث بن بكر",
        "María de la Cruz y Fernández de Córdoba",
    ],
)
def test_names_from_many_cultures(name: str) -> None:
    text = f'{{"mrn": "MRN-40981723", "full_name": "{name}", "dob": "1984-07-19"}}'
    assert covered(text, name)


def test_a_name_value_ends_where_the_next_labelled_sentence_starts() -> None:
    text = f"Patient name: {NAME_FIRST} {NAME_LAST}. Date of birth: {DOB}.\n"
    assert_all_found(text, [f"{NAME_FIRST} {NAME_LAST}", DOB], path="note.txt")
    initials = f"Patient name: Mary J. {NAME_LAST}. DOB: {DOB}\n"
    assert_all_found(initials, [f"Mary J. {NAME_LAST}", DOB], path="note.txt")


def test_a_care_note_names_the_patient_and_the_dates_of_the_stay() -> None:
    text = f"The patient, {NAME_FIRST} {NAME_LAST}, was admitted to the ICU on 2024-02-11 and discharged home on 02/19/2024.\n"
    assert_all_found(text, [f"{NAME_FIRST} {NAME_LAST}", "2024-02-11", "02/19/2024"], path="note.txt")


def test_label_phrases_after_patient_are_not_names() -> None:
    # DICOM / HL7 data dictionaries: "Patient" followed by the capitalised words of a label.
    dictionary = (
        "0x00185100: ('CS', '1', \"Patient Position\", '', 'PatientPosition'),\n"
        "0x00102201: ('LO', '1', \"Patient Species Description\", '', 'PatientSpeciesDescription'),\n"
        "0x00300001: ('SQ', '1', \"Patient Setup Sequence\", '', 'PatientSetupSequence'),\n"
    )
    assert found(dictionary, path="_dicom_dict.py") == []
    assert covered("Patient Wulf Beier was seen today (MRN 40981723).", "Wulf Beier")


def test_bare_identifiers_and_types_are_not_values() -> None:
    code = (
        "class Patient(Base):\n    __tablename__ = 'patients'\n    patient_name = Column(String)\n"
        "    dob: date\n    ssn = Column(EncryptedString)\n\ndef dob(self) -> date:\n    return self.dob\n"
    )
    assert found(code, path="models.py") == []


def test_url_with_record_id() -> None:
    text = 'curl "https://portal.example-health.org/patients/40981723/records?tab=labs" and /api/v1/patients/{id}'
    assert values(text, "url") == ["https://portal.example-health.org/patients/40981723/records?tab=labs"]
    query = "GET https://ehr.northside.org/chart?mrn=40981723&view=summary"
    assert covered(query, "mrn=40981723")


def test_a_device_serial_after_its_own_label() -> None:
    assert values(f"Pump serial: SN 4471-9920-AX\nmrn: {MRN}\n", "device") == ["4471-9920-AX"]
    assert values(f'device_serial = "S/N: 88A1-4471"\nmrn = "{MRN}"\n', "device") == ["88A1-4471"]


def test_html_text_named_by_its_attributes() -> None:
    text = (
        f'<td class="dob">{DOB}</td><td class="patient-name">{NAME_FIRST} {NAME_LAST}</td>\n'
        '<span data-field="mrn">40981855</span>\n'
    )
    assert_all_found(text, [DOB, f"{NAME_FIRST} {NAME_LAST}", "40981855"], path="chart.html")
    # A class that names no field leaves the cell to its tag.
    assert found('<td class="col-md-6">Build Pipeline</td>', path="index.html") == []


def test_a_transmitter_id_in_capitals_with_one_digit() -> None:
    text = f'    mrn = "{MRN}"\n    cgm_transmitter_id = "8HBMYS"\n    device_status = "ACTIVE"\n'
    assert values(text, "device") == ["8HBMYS"]


def test_fhir_builder_setters() -> None:
    text = (
        f'patient.addName().setFamily("{NAME_LAST}").addGiven("{NAME_FIRST}");\n'
        f'patient.setBirthDate("{DOB}");\n'
    )
    assert_all_found(text, [NAME_LAST, NAME_FIRST, DOB], path="PatientTest.java")


def test_a_column_list_is_not_a_name() -> None:
    text = (
        "INSERT INTO `patient_data` (`fname`, `lname`, `mname`, `DOB`) VALUES\n"
        f"('{NAME_FIRST}', '{NAME_LAST}', 'R', '{DOB}');\n"
    )
    assert values(text, "name", path="seed.sql") == [NAME_FIRST, NAME_LAST]


def test_html_tables_by_their_header_row() -> None:
    text = (
        '<table border="1" class="dataframe">\n  <thead>\n    <tr><th></th><th>patient_name</th><th>dob</th>'
        "<th>status</th></tr>\n  </thead>\n  <tbody>\n"
        f"    <tr><th>0</th><td>{NAME_FIRST} {NAME_LAST}</td><td>{DOB}</td><td>Active Care</td></tr>\n"
        "    <tr><th>1</th><td>Teodoro Alvarez</td><td>1979-03-14</td><td>Closed</td></tr>\n"
        "  </tbody>\n</table>\n"
    )
    assert_all_found(
        text, [f"{NAME_FIRST} {NAME_LAST}", DOB, "Teodoro Alvarez", "1979-03-14"], path="report.html"
    )
    assert not covered(text, "Active Care", path="report.html")


def test_rows_of_a_list_about_people_without_a_header() -> None:
    text = f'PATIENTS = [\n    ("{NAME_FIRST}", "{NAME_LAST}", "{DOB}"),\n    ("Teodoro Alvarez", "1979-03-14"),\n]\n'
    assert_all_found(text, [NAME_FIRST, NAME_LAST, DOB, "Teodoro Alvarez", "1979-03-14"], path="conftest.py")
    bulk = (
        'cur.executemany("INSERT INTO patients (first_name, last_name, dob) VALUES (?, ?, ?)",\n'
        f'    [("{NAME_FIRST}", "{NAME_LAST}", "{DOB}")])\n'
    )
    assert_all_found(bulk, [NAME_FIRST, NAME_LAST, DOB], path="seed.py")
    # Rows of a list that is not about people, and rows without a birth date, say nothing.
    assert found('RELEASES = [("Debian", "Bookworm", "2023-06-10"), ("Alpha", "Beta", "2019-05-01")]') == []
    assert found('PATIENT_STATUSES = [("Active Care", "Open"), ("Closed", "Final")]') == []
    assert found('HTTP_CLIENTS = [("Mozilla Firefox", "2019-05-01"), ("Chrome Canary", "2023-01-01")]') == []
    assert found('PERSONAL_TOKENS = [("Deploy Bot", "2023-01-01")]  # remember to rotate') == []


def test_rows_in_braces_and_the_arguments_of_calls_that_build_a_person() -> None:
    go = (
        "var patients = []Patient{\n"
        f'\t{{"{NAME_FIRST}", "{NAME_LAST}", "{DOB}"}},\n'
        '\t{"Teodoro", "Alvarez", "1979-03-14"},\n}\n'
        'p := NewPatient("Haruto", "Sato", time.Date(1990, 5, 14, 0, 0, 0, 0, time.UTC))\n'
    )
    assert_all_found(
        go,
        [
            NAME_FIRST,
            NAME_LAST,
            DOB,
            "Teodoro",
            "Alvarez",
            "1979-03-14",
            "Haruto",
            "Sato",
            "time.Date(1990, 5, 14",
        ],
        path="patient_test.go",
    )
    calls = (
        'let q = Patient::new("Dmitri", "Volkov", "1971-08-30");\n'
        'val p = Patient(\n    "Søren",\n    "Kierkegaard-Holm",\n    LocalDate.parse("1955-12-01"),\n)\n'
        'var m = new Member("Amara", "Okafor".Trim(), new DateTime(1962, 11, 3));\n'
    )
    assert_all_found(
        calls,
        ["Dmitri", "Volkov", "1971-08-30", "Søren", "Kierkegaard-Holm", "1955-12-01", "Amara", "Okafor",
         "new DateTime(1962, 11, 3)"],
        path="fixtures.kt",
    )  # fmt: skip
    # A call that builds no person, a person call without a birth date, and keyed rows say nothing here.
    assert found('remember("Deploy Bot", "Release Train", "2019-05-01")') == []
    assert found('createPersonalToken("Deploy Bot", "Ops Team", "2019-05-01")') == []
    assert found('Patient("Active Care", "Open")', path="models.kt") == []
    assert found('var statuses = []Patient{{"Active Care", "Open"}}', path="status.go") == []


def test_values_quoted_by_error_messages() -> None:
    text = (
        f"ValidationError: invalid value '{NAME_FIRST} {NAME_LAST}' for field 'full_name'\n"
        f"DETAIL:  Key (first_name, dob)=({NAME_FIRST}, {DOB}) already exists.\n"
        "DETAIL:  Key (mrn)=(40981723) already exists.\n"
    )
    assert_all_found(text, [f"{NAME_FIRST} {NAME_LAST}", NAME_FIRST, DOB, "40981723"], path="app.log")
    assert found("invalid value 'Build Pipeline' for field 'job_name'", path="ci.log") == []


def test_logfmt_pairs_a_space_apart() -> None:
    text = f"level=info patient.name={NAME_FIRST} Okafor patient.dob={DOB} msg=created\n"
    assert_all_found(text, [f"{NAME_FIRST} Okafor", DOB], path="app.log")


def test_fhir_conformance_resources_carry_the_publishers_contacts() -> None:
    definition = (
        '{"resourceType": "StructureDefinition", "publisher": "HL7 International", "contact": [{"telecom": '
        '[{"system": "email", "value": "cgp@lists.hl7.org"}, {"system": "url", "value": "http://www.hl7.org/Special"}]}]}'
    )
    assert found(definition, path="StructureDefinition-us-core-patient.json") == []
    bundle = (
        '{"resourceType": "Bundle", "entry": [{"resource": ' + definition + "}, "
        '{"resource": {"resourceType": "Patient", "telecom": [{"system": "email", "value": "ana.ruiz84@gmail.com"}]}}]}'
    )
    assert "ana.ruiz84@gmail.com" in values(bundle, "email", path="bundle.json")


def test_a_csv_file_of_two_columns_is_read_by_its_header() -> None:
    """`cut -d, -f1,3 exports/pt.csv` keeps two columns: a file's header needs no third."""
    text = "last_name,mrn\nOkonkwo,00482913\nReyes,00591234\n"
    assert [text[f.start : f.end] for f in scan_text(text, path="exports/pt.csv")] == [
        "Okonkwo",
        "00482913",
        "Reyes",
        "00591234",
    ]
    # Text of unknown origin needs a header of three names, two of them PHI fields.
    assert scan_text("Columns:\n" + text, path="notes.md") == []


@pytest.mark.parametrize(
    "rows",
    [
        "Okonkwo,Marisol,1984-07-12,00482913\nReyes,Tomas,1990-02-03,00591234\n",  # grep, tail -n +2
        "00482913\tMarisol Okonkwo\t07/12/1984\n",  # a full name and a date, tab-separated
    ],
)
def test_rows_of_an_export_printed_without_their_header_are_records(rows: str) -> None:
    spans = {rows[f.start : f.end] for f in scan_text(rows, path="exports/patients.csv")}
    assert spans & {"Okonkwo", "Marisol", "Marisol Okonkwo"} and spans & {"1984-07-12", "07/12/1984"}


def test_headerless_rows_without_a_birth_date_and_a_name_say_nothing() -> None:
    text = "1,20.50,2024-01-02\n2,3.10,2024-02-03\nwidget,blue,large\n"
    assert scan_text(text, path="exports/orders.csv") == []


def test_a_mysql_client_table_is_read_by_its_header() -> None:
    text = (
        "mysql> select * from patients;\n"
        "+-----------+------------+------------+----------+\n"
        "| last_name | first_name | dob        | mrn      |\n"
        "+-----------+------------+------------+----------+\n"
        "| Okonkwo   | Marisol    | 1984-07-12 | 00482913 |\n"
        "| Hallorann | Dick       | 1953-02-11 | 20571946 |\n"
        "+-----------+------------+------------+----------+\n"
        "2 rows in set (0.00 sec)\n"
    )
    assert {text[f.start : f.end] for f in scan_text(text)} == {
        "Okonkwo", "Marisol", "1984-07-12", "00482913", "Hallorann", "Dick", "1953-02-11", "20571946",
    }  # fmt: skip
