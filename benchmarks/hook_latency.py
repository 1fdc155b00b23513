"""Pre-commit hook latency: a commit touching 50 files in a 10,000-file repository.

Generates the repository in a temporary directory, stages edits to 50 files (one of them adding a
synthetic SSN, so the hook does its full blocking path), and times `phiwarden hook run` as git would
start it (a new process each time). The last line of output is a JSON object with the figures.
Target: median <= 0.5 s wall.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import compile_bytecode

FILES = 10_000
TOUCHED = 50
RUNS = 7


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def source(index: int, rng: random.Random) -> str:
    body = [f'"""Module {index}."""', "", "import logging", "", "log = logging.getLogger(__name__)", ""]
    for f in range(rng.randint(3, 12)):
        body += [f"def handler_{f}(request, value_{f}):", f"    total = value_{f} * {rng.randint(1, 99)}"]
        body += ["    log.info('handled %s', total)", "    return {'ok': True, 'total': total}", ""]
    return "\n".join(body) + "\n"


def main() -> None:
    compile_bytecode()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="phiwarden-hook-") as tmp:
        root = Path(tmp)
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.name", "Bench")
        git(root, "config", "user.email", "bench@example.com")
        for index in range(FILES):
            path = root / f"pkg{index % 100:02d}" / f"mod_{index:05d}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(source(index, rng))
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "init")
        touched = rng.sample(range(FILES), TOUCHED)
        for n, index in enumerate(touched):
            path = root / f"pkg{index % 100:02d}" / f"mod_{index:05d}.py"
            extra = (
                '\ndef added():\n    ssn = "512-44-8391"\n' if n == 0 else "\ndef added():\n    return 42\n"
            )
            path.write_text(path.read_text() + extra)
        git(root, "add", ".")
        command = [sys.executable, "-m", "phiwarden", "hook", "run"]
        env = {**os.environ, "NO_COLOR": "1"}
        times = []
        status = None
        for _ in range(RUNS):
            started = time.perf_counter()
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, check=False)
            times.append(time.perf_counter() - started)
            status = done.returncode
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python_start = time.perf_counter() - started
    median = statistics.median(times)
    print(f"repository: {FILES} files; commit touching {TOUCHED} files; {RUNS} runs")
    print(f"hook run: median {median:.3f}s, min {min(times):.3f}s, max {max(times):.3f}s (exit {status})")
    print(f"(bare python start-up on this machine: {python_start:.3f}s)")
    print(
        json.dumps(
            {
                "benchmark": "hook_latency",
                "files_in_repo": FILES,
                "files_touched": TOUCHED,
                "median_seconds": round(median, 3),
                "min_seconds": round(min(times), 3),
                "max_seconds": round(max(times), 3),
                "target_seconds": 0.5,
                "meets_target": median <= 0.5,
                "blocked": status == 1,
            }
        )
    )


if __name__ == "__main__":
    main()
