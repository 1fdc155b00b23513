"""Accuracy of `phiwarden scan`.

- On the labelled development benchmark (../shared/eval-dev): recall, precision, F2, category
  accuracy and per-category recall, scored by the benchmark's own scorer.
- On the CPython standard library of the running interpreter (no patient data): the number of
  non-secret findings, i.e. false positives on ordinary code.
- On held-out synthetic records in styles the detectors were not tuned on (tests/synthetic.py).

    python -m benchmarks.accuracy            # the last line is a JSON object of the figures
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import EVAL_DEV, STDLIB, emit, scan_json, stdlib_args


def eval_dev(corpus: Path) -> dict[str, Any] | None:
    scorer = corpus.parent / "score.py"
    if not (corpus / "truth.jsonl").exists() or not scorer.exists():
        print(f"eval-dev not found at {corpus}; skipping", file=sys.stderr)
        return None
    report, _ = scan_json(corpus, "--min-confidence", "0.6")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(report, handle)
    scored = subprocess.run(
        [
            sys.executable,
            str(scorer),
            "--truth",
            str(corpus / "truth.jsonl"),
            "--findings",
            handle.name,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(handle.name).unlink()
    summary: dict[str, Any] = json.loads(scored.stdout)
    return {
        "recall": summary["recall"],
        "precision": summary["precision"],
        "f2": summary["f2"],
        "category_accuracy": summary["category_accuracy"],
        "false_positives": summary["false_positives"],
        "fp_per_1k_clean_lines": summary["fp_per_1k_clean_lines"],
        "per_category_recall": {c: v["recall"] for c, v in summary["per_category"].items()},
    }


def stdlib_false_positives() -> dict[str, Any]:
    report, _ = scan_json(STDLIB, *stdlib_args())
    findings = report["findings"]
    phi = Counter(f["category"] for f in findings if f["category"] != "secret")
    return {
        "files": report["summary"]["files_scanned"],
        "mb": round(report["summary"]["bytes_scanned"] / 1e6, 1),
        "phi_findings": sum(phi.values()),
        "phi_by_category": dict(phi),
        "secret_findings": sum(1 for f in findings if f["category"] == "secret"),
    }


def held_out(count: int) -> dict[str, Any]:
    from tests.synthetic import samples

    from phiwarden.detect import scan_text

    planted = hit = extra = 0
    for sample in samples(count, seed=2026):
        findings = scan_text(sample.text)
        for start, end, _ in sample.truth:
            planted += 1
            hit += any(f.start < end and start < f.end for f in findings)
        extra += sum(1 for f in findings if not any(f.start < e and s < f.end for s, e, _ in sample.truth))
    return {"samples": count, "recall": round(hit / planted, 4), "false_positives": extra}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-dev", type=Path, default=EVAL_DEV, help="eval-dev corpus directory")
    parser.add_argument("--synthetic", type=int, default=960, help="held-out synthetic samples")
    args = parser.parse_args()
    figures = {
        "eval_dev": eval_dev(args.eval_dev),
        "stdlib": stdlib_false_positives(),
        "held_out_synthetic": held_out(args.synthetic),
    }
    print(json.dumps(figures, indent=2))
    emit(figures)


if __name__ == "__main__":
    main()
