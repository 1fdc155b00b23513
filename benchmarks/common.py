"""Shared helpers for the benchmark scripts: locating corpora and running the real command."""

from __future__ import annotations

import compileall
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVAL_DEV = ROOT.parent / "shared" / "eval-dev" / "corpus"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# The stdlib directory of the interpreter, without installed packages and bytecode caches.
STDLIB_EXCLUDES = ["site-packages/", "dist-packages/", "__pycache__/"]


def compile_bytecode() -> None:
    """Byte-compile the phiwarden package, as `pip install` does for a wheel.

    An editable checkout is compiled on import, and where PYTHONDONTWRITEBYTECODE is set (these
    machines set it) every process would compile every module again (~0.1 s of each start-up): a
    cost no installed copy pays, so the timings would not be the product's.
    """
    spec = importlib.util.find_spec("phiwarden")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        compileall.compile_dir(location, quiet=1)


def phiwarden(*args: str) -> tuple[subprocess.CompletedProcess[bytes], float, int]:
    """Run `phiwarden ARGS` in its own process: (result, wall seconds, peak RSS in KiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "phiwarden", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    # The process is reaped by communicate(); its children's peak shows in RUSAGE_CHILDREN.
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return subprocess.CompletedProcess(process.args, process.returncode or 0, stdout, stderr), elapsed, peak


def scan_json(path: Path, *extra: str) -> tuple[dict[str, Any], float]:
    """Scan `path` with the JSON report: (report, wall seconds)."""
    out = ROOT / ".bench" / f"report-{os.getpid()}.json"
    out.parent.mkdir(exist_ok=True)
    result, elapsed, _ = phiwarden("scan", str(path), "-q", "--format", "json", "-o", str(out), *extra)
    if result.returncode not in (0, 1):
        raise SystemExit(result.stderr.decode(errors="replace"))
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return report, elapsed


def stdlib_args() -> list[str]:
    return [arg for glob in STDLIB_EXCLUDES for arg in ("--exclude", glob)]


def machine_speed() -> dict[str, float]:
    """Three reference figures of the machine the benchmark ran on, taken as it ends.

    Virtual machines of one kind differ by up to twice in speed from one day (or host) to the next;
    with these beside them, figures from different runs can be told apart from changes in the code:
    a pure-Python loop (interpreter speed), SHA-256 of 1.5 KB records (what hashing an audit record
    costs) and `fdatasync` of an 8 KB write (what a durable append waits for).
    """
    began = time.perf_counter()
    total = 0
    for number in range(2_000_000):
        total += number
    loop_ns = (time.perf_counter() - began) / 2_000_000 * 1e9
    record = b"r" * 1500
    began = time.perf_counter()
    for _ in range(100_000):
        hashlib.sha256(record).digest()
    sha_us = (time.perf_counter() - began) / 100_000 * 1e6
    waits: list[float] = []
    with tempfile.TemporaryDirectory(prefix="phiwarden-bench-") as tmp:
        descriptor = os.open(Path(tmp) / "sync", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(200):
                os.write(descriptor, record * 5)
                began = time.perf_counter()
                os.fdatasync(descriptor)
                waits.append(time.perf_counter() - began)
        finally:
            os.close(descriptor)
    return {
        "python_loop_ns": round(loop_ns, 1),
        "sha256_1500b_us": round(sha_us, 2),
        "fdatasync_p50_ms": round(sorted(waits)[len(waits) // 2] * 1000, 3),
    }


def emit(figures: dict[str, Any]) -> None:
    """Print the figures, with the machine's reference figures, as one JSON object on the last line."""
    print(json.dumps({**figures, "machine": machine_speed()}, sort_keys=True))
