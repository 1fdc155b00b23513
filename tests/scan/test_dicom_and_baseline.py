from __future__ import annotations

import json
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from phiwarden.policy import Policy
from phiwarden.scan.baseline import Baseline, BaselineError, write
from phiwarden.scan.files import Selection, Skipped, collect
from phiwarden.scan.runner import FileScanner, run


def _dicom(path: Path, *, transfer_syntax: UID = ExplicitVRLittleEndian, **elements: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    dataset = Dataset()
    dataset.file_meta = meta
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    dataset.preamble = bytes(128)
    dataset.save_as(path, enforce_file_format=True)


def test_dicom_header_values_are_reported_with_tags_and_byte_offsets(tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    _dicom(
        path,
        PatientName="Okonkwo^Marisol",
        PatientID="MRN40981723",
        PatientBirthDate="19840719",
        StudyDate="20240102",
        Modality="CT",
    )
    result = FileScanner(Policy()).scan_path(path, "ct.dcm")
    data = path.read_bytes()
    by_tag = {f.binary_tag: data[f.start : f.end].decode() for f in result.findings}
    assert by_tag == {
        "(0010,0010) PatientName": "Okonkwo^Marisol",
        "(0010,0020) PatientID": "MRN40981723",
        "(0010,0030) PatientBirthDate": "19840719",
        "(0008,0020) StudyDate": "20240102",
    }
    assert result.classification is not None and result.classification.tier == "restricted"
    assert all(f.preview != v for f, v in zip(result.findings, by_tag.values(), strict=True))


def test_implicit_vr_dicom(tmp_path: Path) -> None:
    path = tmp_path / "mr.dcm"
    _dicom(path, transfer_syntax=ImplicitVRLittleEndian, PatientName="Nakamura^Haruto", PatientID="PX-99812")
    assert pydicom.dcmread(path).PatientName == "Nakamura^Haruto"
    result = FileScanner(Policy()).scan_path(path, "mr.dcm")
    assert sorted(f.category for f in result.findings) == ["mrn", "name"]


def test_anonymised_dicom_has_no_findings(tmp_path: Path) -> None:
    path = tmp_path / "anon.dcm"
    _dicom(path, PatientName="ANONYMOUS", PatientID="", Modality="MR")
    assert FileScanner(Policy()).scan_path(path, "anon.dcm").findings == []


def test_truncated_dicom_is_skipped_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "broken.dcm"
    path.write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    result = FileScanner(Policy()).scan_path(path, "broken.dcm")
    assert result.skipped is not None and result.skipped.startswith("unreadable DICOM header")


def test_baseline_round_trip(tmp_path: Path) -> None:
    (tmp_path / "old.py").write_text('ssn = "518-42-7731"\n')
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    report = run(root, found, skipped, Policy())
    baseline_path = tmp_path.parent / "baseline.json"
    assert write(baseline_path, report.files) == 1
    document = json.loads(baseline_path.read_text())
    assert "518" not in baseline_path.read_text()  # no values, no previews
    assert document["findings"][0]["path"] == "old.py"

    (tmp_path / "new.py").write_text('ssn = "402-11-9876"\n')
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    report = run(root, found, skipped, Policy())
    Baseline.load(baseline_path).apply(report.files)
    assert [f.path for f in report.findings] == ["new.py"]
    assert sum(r.baselined for r in report.files) == 1


def test_bad_baseline_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    try:
        Baseline.load(missing)
    except BaselineError as exc:
        assert "no such baseline file" in str(exc)
    else:
        raise AssertionError("expected an error")
    other = tmp_path / "other.json"
    other.write_text('{"results": []}')
    try:
        Baseline.load(other)
    except BaselineError as exc:
        assert "not a phiwarden baseline" in str(exc)
    else:
        raise AssertionError("expected an error")
