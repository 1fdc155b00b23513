"""History scan throughput, next to `git log -p` on the same repository in the same run.

Generates a repository with `git fast-import` (a few hundred files edited over a thousand commits,
branches and merges, a few synthetic PHI fixtures), then times:
- `git log -p --all` writing to /dev/null (what the history scan is compared with);
- `phiwarden scan --history` (every blob once, every reachable commit).
Throughput is MB of unique blob content per second. The last line of output is a JSON object.
Target: the history scan takes at most 2x the time of `git log -p`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import compile_bytecode

FILES = 300
COMMITS = 1500
EDITS_PER_COMMIT = 3


def line(rng: random.Random, n: int) -> str:
    kind = rng.random()
    if kind < 0.5:
        return f"    value_{n} = compute(request, {rng.randint(0, 9999)})  # step {n}"
    if kind < 0.8:
        return f"    log.info('processed batch %s of %s', {rng.randint(0, 99)}, total)"
    return f"    return {{'id': {n}, 'status': 'ok', 'items': [{rng.randint(0, 9)}, {rng.randint(0, 9)}]}}"


def generate(root: Path) -> None:
    rng = random.Random(11)
    files: dict[str, list[str]] = {}
    for index in range(FILES):
        body = [f"def handler_{index}(request, total):"] + [line(rng, i) for i in range(rng.randint(40, 160))]
        files[f"src/pkg{index % 20}/mod_{index}.py"] = body
    stream: list[bytes] = []
    mark = 0

    def blob(text: str) -> int:
        nonlocal mark
        mark += 1
        data = text.encode()
        stream.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
        return mark

    def commit(branch: str, message: str, changes: dict[str, str], when: int, parent_marks: list[int]) -> int:
        nonlocal mark
        refs = {path: blob(text) for path, text in changes.items()}
        mark += 1
        msg = message.encode()
        out = b"commit refs/heads/%s\nmark :%d\nauthor Dev <dev@example.com> %d +0000\n" % (
            branch.encode(),
            mark,
            when,
        )
        out += b"committer Dev <dev@example.com> %d +0000\ndata %d\n%s\n" % (when, len(msg), msg)
        if parent_marks:
            out += b"from :%d\n" % parent_marks[0]
            for extra in parent_marks[1:]:
                out += b"merge :%d\n" % extra
        for path, ref in refs.items():
            out += b"M 100644 :%d %s\n" % (ref, path.encode())
        stream.append(out + b"\n")
        return mark

    when = 1_700_000_000
    head = commit("main", "initial import", {p: "\n".join(b) + "\n" for p, b in files.items()}, when, [])
    feature_head = None
    for n in range(COMMITS):
        when += 60
        changes = {}
        for path in rng.sample(sorted(files), EDITS_PER_COMMIT):
            body = files[path]
            at = rng.randrange(1, len(body))
            if rng.random() < 0.6:
                body.insert(at, line(rng, n))
            else:
                body[at] = line(rng, n)
            changes[path] = "\n".join(body) + "\n"
        if n % 250 == 100:
            changes[f"tests/fixtures/patient_{n}.json"] = (
                json.dumps(
                    {"patient": {"name": "Maria Gonzalez", "ssn": "512-44-8391", "mrn": f"MRN-0048{n:04d}"}}
                )
                + "\n"
            )
        if n % 100 == 50:
            feature_head = commit("feature", f"feature {n}", changes, when, [head])
            continue
        if feature_head is not None and n % 100 == 60:
            head = commit("main", f"merge {n}", changes, when, [head, feature_head])
            feature_head = None
            continue
        head = commit("main", f"change {n}", changes, when, [head])
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=root, check=True)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    with Path(os.devnull).open("wb") as sink:
        subprocess.run(command, cwd=cwd, stdout=sink, stderr=subprocess.PIPE, check=False)
    return time.perf_counter() - started


def main() -> None:
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="phiwarden-history-") as tmp:
        root = Path(tmp)
        generate(root)
        timed(["git", "log", "-p", "--all"], root)  # warm the object cache for both
        git_runs = [timed(["git", "log", "-p", "--all"], root) for _ in range(3)]
        report_path = root.parent / f"{root.name}-report.json"
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "phiwarden",
                    "scan",
                    "--history",
                    "--format",
                    "json",
                    "-o",
                    str(report_path),
                ],
                cwd=root,
                check=False,
            )
            runs.append(time.perf_counter() - started)
        document = json.loads(report_path.read_text())
        report_path.unlink()
    history = document["history"]
    seconds = min(runs)
    git_seconds = min(git_runs)
    megabytes = history["bytes"] / 1e6
    ratio = seconds / git_seconds
    print(
        f"repository: {history['commits']} commits, {history['blobs']} unique blobs, "
        f"{megabytes:.1f} MB of blob content"
    )
    print(f"git log -p --all: {git_seconds:.2f}s ({megabytes / git_seconds:.1f} MB/s of blob content)")
    print(
        f"phiwarden scan --history: {seconds:.2f}s ({megabytes / seconds:.1f} MB/s), {ratio:.2f}x git log -p"
    )
    print(f"findings: {len(document['findings'])} (each introduced value once)")
    print(
        json.dumps(
            {
                "benchmark": "history_throughput",
                "commits": history["commits"],
                "blobs": history["blobs"],
                "blob_megabytes": round(megabytes, 2),
                "phiwarden_seconds": round(seconds, 3),
                "phiwarden_runs": [round(run, 3) for run in runs],
                "phiwarden_mb_per_s": round(megabytes / seconds, 2),
                "git_log_p_seconds": round(git_seconds, 3),
                "git_log_p_runs": [round(run, 3) for run in git_runs],
                "git_log_p_mb_per_s": round(megabytes / git_seconds, 2),
                "ratio_to_git_log_p": round(ratio, 2),
                "target_ratio": 2.0,
                "meets_target": ratio <= 2.0,
                "findings": len(document["findings"]),
                "jobs": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
