"""Throughput of `phiwarden scan` on the CPython standard library, next to peers on the same files.

- phiwarden: MB/s with one job and with all cores over the whole stdlib (median of three runs, the
  files read once beforehand so the disk is not measured), and peak RSS on the stdlib and on twice
  it (memory should stay flat as the tree grows).
- detect-secrets 1.5 and Presidio's pattern recognizers (no NLP model), installed into the
  benchmark's own virtual environment (.bench/venv), run on the same files, one process each (they
  take minutes; `--sample-mb 3` runs all three on a deterministic sample instead).

    python -m benchmarks.throughput           # the last line is a JSON object of the figures
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, STDLIB, compile_bytecode, emit, phiwarden, scan_json, stdlib_args

BENCH = ROOT / ".bench"
VENV = BENCH / "venv"
PEERS = ["detect-secrets==1.5.*", "presidio-analyzer==2.2.*"]

PRESIDIO_RUNNER = """
import sys, time
from pathlib import Path
from presidio_analyzer import PatternRecognizer, RecognizerRegistry
registry = RecognizerRegistry()
registry.load_predefined_recognizers()
recognizers = [r for r in registry.recognizers if isinstance(r, PatternRecognizer)]
files = [p for p in Path(sys.argv[1]).rglob("*") if p.is_file()]
started = time.perf_counter()
found = 0
for path in files:
    text = path.read_text(encoding="utf-8", errors="replace")
    for recognizer in recognizers:
        found += len(recognizer.analyze(text, recognizer.supported_entities, None))
print(time.perf_counter() - started, found)
"""


def _text_files(root: Path) -> list[Path]:
    files = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__"))
        for name in sorted(names):
            path = Path(directory) / name
            with path.open("rb") as handle:
                if b"\x00" not in handle.read(8192):
                    files.append(path)
    return files


def make_sample(target_mb: float) -> tuple[Path, int]:
    """Every k-th text file of the stdlib, copied under .bench/sample, about `target_mb` in all."""
    files = _text_files(STDLIB)
    total = sum(p.stat().st_size for p in files)
    step = max(1, round(total / (target_mb * 1e6)))
    sample = BENCH / "sample"
    shutil.rmtree(sample, ignore_errors=True)
    size = 0
    for path in files[::step]:
        destination = sample / path.relative_to(STDLIB)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        size += path.stat().st_size
    return sample, size


def make_double() -> Path:
    """The stdlib's text files twice over: the same kind of tree at twice the size."""
    files = _text_files(STDLIB)
    double = BENCH / "double"
    shutil.rmtree(double, ignore_errors=True)
    for copy in ("a", "b"):
        for path in files:
            destination = double / copy / path.relative_to(STDLIB)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
    return double


def ensure_peers() -> Path | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import detect_secrets, presidio_analyzer"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEERS], capture_output=True, text=True, check=False
        )
        if installed.returncode != 0:
            print(f"could not install peers: {installed.stderr[-2000:]}", file=sys.stderr)
            return None
    return python


def time_detect_secrets(python: Path, sample: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(python), "-I", "-m", "detect_secrets", "scan", "--all-files", str(sample)],
        capture_output=True,
        check=True,
        cwd=BENCH,
    )
    return time.perf_counter() - started


def time_presidio(python: Path, sample: Path) -> float:
    result = subprocess.run(
        [str(python), "-I", "-c", PRESIDIO_RUNNER, str(sample)],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH,
    )
    return float(result.stdout.split()[0])


RUNS = 3


def warm_file_cache(root: Path) -> None:
    """Read every file once, so that the first timed run measures scanning, not the disk."""
    for directory, _, names in os.walk(root):
        for name in names:
            with suppress(OSError), (Path(directory) / name).open("rb") as handle:
                while handle.read(1 << 20):
                    pass


def phiwarden_rate(path: Path, jobs: int, *extra: str) -> tuple[float, float, int]:
    """(MB/s, MB, files) of the median of RUNS scans: one run on a shared machine is noise."""
    runs = [scan_json(path, "-j", str(jobs), *extra) for _ in range(RUNS)]
    report, elapsed = sorted(runs, key=lambda run: run[1])[RUNS // 2]
    megabytes = report["summary"]["bytes_scanned"] / 1e6
    return megabytes / elapsed, megabytes, report["summary"]["files_scanned"]


def peak_rss_kib(path: Path, *extra: str) -> int:
    runner = (
        "import resource, subprocess, sys;"
        "subprocess.run([sys.executable, '-m', 'phiwarden', 'scan', '-q', '-j', '1', '--format', 'json',"
        " '-o', '/dev/null', *sys.argv[1:]]);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, str(path), *extra], capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sample-mb",
        type=float,
        default=0.0,
        help="run the peers on a sample of about this size instead of the whole stdlib (they take minutes)",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip detect-secrets and Presidio")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    compile_bytecode()
    phiwarden("--version")  # the interpreter's own files in the page cache before timing
    warm_file_cache(STDLIB)

    one, megabytes, files = phiwarden_rate(STDLIB, 1, *stdlib_args())
    many, _, _ = phiwarden_rate(STDLIB, cores, *stdlib_args())
    figures: dict[str, Any] = {
        "stdlib_mb": round(megabytes, 1),
        "stdlib_files": files,
        "cores": cores,
        "phiwarden_mb_s_1_job": round(one, 1),
        "phiwarden_mb_s_all_cores": round(many, 1),
        "phiwarden_mb_s_per_core": round(many / cores, 1),
        "peak_rss_mib_stdlib": round(peak_rss_kib(STDLIB, *stdlib_args()) / 1024, 1),
        "peak_rss_mib_stdlib_twice": round(peak_rss_kib(make_double()) / 1024, 1),
    }
    # Without --sample-mb every text file is copied: the peers read exactly what phiwarden read.
    sample, sample_bytes = make_sample(args.sample_mb or 1e9)
    sample_rate, _, _ = phiwarden_rate(sample, 1)
    figures["peer_corpus_mb"] = round(sample_bytes / 1e6, 2)
    figures["peer_corpus_phiwarden_mb_s_1_job"] = round(sample_rate, 1)
    python = None if args.no_peers else ensure_peers()
    if python is not None:
        detect_secrets = sample_bytes / 1e6 / time_detect_secrets(python, sample)
        presidio = sample_bytes / 1e6 / time_presidio(python, sample)
        figures["peer_corpus_detect_secrets_mb_s"] = round(detect_secrets, 3)
        figures["peer_corpus_presidio_patterns_mb_s"] = round(presidio, 3)
        figures["speedup_vs_detect_secrets"] = round(sample_rate / detect_secrets, 1)
        figures["speedup_vs_presidio_patterns"] = round(sample_rate / presidio, 1)
    emit(figures)


if __name__ == "__main__":
    main()
