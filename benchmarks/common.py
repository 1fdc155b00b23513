"""Shared helpers for the benchmark scripts: locating corpora and running the real command."""

from __future__ import annotations

import compileall
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
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


def emit(figures: dict[str, Any]) -> None:
    """Print the figures as one JSON object on the last line of output."""
    print(json.dumps(figures, sort_keys=True))
