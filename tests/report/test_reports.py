"""Report formats: JSON shape, SARIF 2.1.0 validity and GitHub code-scanning rules, masked text."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from phiwarden.policy import Policy
from phiwarden.report.formats import to_json, to_sarif, to_text
from phiwarden.scan.files import Selection, Skipped, collect
from phiwarden.scan.runner import ScanReport, run

SECRET_VALUES = ["518-42-7731", "Marisol", "Okonkwo", "marisol.o84@gmail.com", "MRN-40981723"]

# The OASIS schema ships inside the sdist of a PyPI package; it is fetched once from the registry.
SCHEMA_PACKAGE = "sarif-pydantic==0.6.2"
SCHEMA_MEMBER = "sarif_pydantic-0.6.2/sarif-schema-2.1.0.json"


@pytest.fixture(scope="session")
def sarif_schema(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Absent when the run disables the cache plugin (-p no:cacheprovider).
    cache = getattr(pytestconfig, "cache", None)
    directory = cache.mkdir("sarif-schema") if cache is not None else tmp_path_factory.mktemp("sarif-schema")
    schema_path = directory / "sarif-schema-2.1.0.json"
    if not schema_path.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                SCHEMA_PACKAGE,
                "-d",
                str(directory),
            ],
            check=True,
        )
        archive = next(directory.glob("sarif_pydantic-*.tar.gz"))
        with tarfile.open(archive) as tar:
            member = tar.extractfile(SCHEMA_MEMBER)
            assert member is not None
            schema_path.write_bytes(member.read())
    schema: dict[str, Any] = json.loads(schema_path.read_text(encoding="utf-8"))
    return schema


@pytest.fixture
def report(tmp_path: Path) -> ScanReport:
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "patient.json").write_text(
        '{\n  "mrn": "MRN-40981723",\n  "first_name": "Marisol",\n  "last_name": "Okonkwo",\n'
        '  "ssn": "518-42-7731",\n  "email": "marisol.o84@gmail.com"\n}\n',
        encoding="utf-8",
    )
    (tmp_path / "clean.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    return run(root, found, skipped, Policy())


def test_json_report_shape(report: ScanReport) -> None:
    document = json.loads(to_json(report))
    assert set(document) == {"tool", "root", "findings", "files", "skipped", "summary"}
    finding = document["findings"][0]
    assert set(finding) == {
        "path", "start", "end", "line", "column", "end_line", "end_column", "category", "rule", "confidence",
        "preview", "fingerprint",
    }  # fmt: skip
    assert finding["path"] == "fixtures/patient.json"
    assert {f["category"] for f in document["findings"]} == {"mrn", "name", "ssn", "email"}
    assert [(f["path"], f["tier"]) for f in document["files"]] == [
        ("clean.py", "internal"),
        ("fixtures/patient.json", "restricted"),
    ]
    assert document["skipped"] == [{"path": "logo.png", "reason": "binary file"}]
    assert document["summary"]["files_skipped"] == 1
    assert document["summary"]["by_category"] == {"email": 1, "mrn": 1, "name": 2, "ssn": 1}


def test_json_offsets_point_at_the_values(report: ScanReport) -> None:
    text = (Path(report.root) / "fixtures" / "patient.json").read_text(encoding="utf-8")
    document = json.loads(to_json(report))
    assert [text[f["start"] : f["end"]] for f in document["findings"]] == [
        "MRN-40981723",
        "Marisol",
        "Okonkwo",
        "518-42-7731",
        "marisol.o84@gmail.com",
    ]


@pytest.mark.parametrize("render", [to_json, to_sarif, to_text])
def test_no_report_contains_a_raw_value(report: ScanReport, render: Any) -> None:
    output = render(report)
    for value in SECRET_VALUES:
        assert value not in output


def test_sarif_is_valid_against_the_schema(report: ScanReport, sarif_schema: dict[str, Any]) -> None:
    document = json.loads(to_sarif(report))
    jsonschema.validate(document, sarif_schema)


def test_sarif_meets_github_code_scanning_rules(report: ScanReport) -> None:
    document = json.loads(to_sarif(report))
    assert document["version"] == "2.1.0"
    run_ = document["runs"][0]
    rules = {rule["id"]: rule for rule in run_["tool"]["driver"]["rules"]}
    for result in run_["results"]:
        rule = rules[result["ruleId"]]
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        float(rule["properties"]["security-severity"])
        location = result["locations"][0]["physicalLocation"]
        assert not location["artifactLocation"]["uri"].startswith("/")
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1
        assert result["partialFingerprints"]["phiwarden/v1"]
        assert result["level"] in ("error", "warning", "note")
    notifications = run_["invocations"][0]["toolExecutionNotifications"]
    assert notifications[0]["message"]["text"] == "not scanned: binary file"


def test_sarif_for_binary_findings_uses_byte_regions(tmp_path: Path, sarif_schema: dict[str, Any]) -> None:
    from tests.scan.test_dicom_and_baseline import _dicom

    _dicom(tmp_path / "ct.dcm", PatientName="Okonkwo^Marisol", PatientID="MRN40981723")
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    document = json.loads(to_sarif(run(root, found, skipped, Policy())))
    jsonschema.validate(document, sarif_schema)
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in document["runs"][0]["results"]]
    assert all(set(region) == {"byteOffset", "byteLength"} for region in regions)


def test_text_report_groups_by_file_with_masked_previews(report: ScanReport) -> None:
    text = to_text(report)
    assert "fixtures/patient.json  [restricted]" in text
    assert "***-**-7731" in text and "M****** O******" not in text
    assert "M******" in text
    assert "skipped 1 file(s):\n  logo.png: binary file" in text
    assert "5 finding(s) in 1 of 2 file(s)" in text
