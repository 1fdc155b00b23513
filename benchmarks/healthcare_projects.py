"""Findings of `phiwarden scan` on healthcare projects' own sources, fetched from PyPI and npm.

Real public code of the field (FHIR, HL7 v2, X12 and DICOM libraries) is where false positives on
specifications and vocabularies show: each project is downloaded once into .bench/healthcare (a
source distribution from PyPI, a package tarball from npm), scanned whole with the default policy,
and its findings are counted by rule family. What the findings are is for a person to read; the
README records that reading.

    python -m benchmarks.healthcare_projects      # the last line is a JSON object of the figures
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

from benchmarks.common import ROOT, compile_bytecode, emit, scan_json

HOME = ROOT / ".bench" / "healthcare"
PYPI = ["pyx12==4.0.0", "hl7apy==1.3.5", "hl7==0.4.5", "fhir.resources==8.3.0", "fhirpy==2.3.1",
        "fhirclient==4.4.0", "deid==0.4.13", "medspacy==1.3.1"]  # fmt: skip
NPM = ["fhir@4.12.0", "simple-hl7@3.3.0", "dicom-parser@1.8.21"]


def _unpack(archive: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def fetch_pypi(spec: str) -> Path:
    name = spec.split("==", maxsplit=1)[0]
    target = HOME / "pypi" / name
    if not target.exists():
        download = HOME / "downloads"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", spec,
             "-d", str(download), "-q"],
            check=True,
        )  # fmt: skip
        stem = spec.replace("==", "-").replace(".", "_").lower()
        archive = next(p for p in download.iterdir() if p.name.replace(".", "_").lower().startswith(stem))
        _unpack(archive, target)
    return target


def fetch_npm(spec: str) -> Path:
    target = HOME / "npm" / spec.split("@", maxsplit=1)[0]
    if not target.exists():
        download = HOME / "downloads"
        download.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed for the npm projects")
        name = subprocess.run(
            [npm, "pack", spec, "--silent"], cwd=download, check=True, capture_output=True, text=True
        ).stdout.split()[-1]
        _unpack(download / name, target)
    return target


def main() -> None:
    compile_bytecode()
    figures: dict[str, dict[str, object]] = {}
    projects = [(spec, fetch_pypi) for spec in PYPI] + [(spec, fetch_npm) for spec in NPM]
    for spec, fetch in projects:
        root = fetch(spec)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        report, seconds = scan_json(root)
        families = Counter(f["rule"].split(".")[0] for f in report["findings"])
        count = len(report["findings"])
        figures[spec] = {
            "mb": round(size / 1e6, 1),
            "seconds": round(seconds, 2),
            "findings": count,
            "by_rule_family": dict(sorted(families.items())),
        }
        print(f"{spec:24} {size / 1e6:6.1f} MB {seconds:6.2f} s {count:5d} findings {dict(families)}")
    emit({"benchmark": "healthcare_projects", "projects": figures})


if __name__ == "__main__":
    main()
