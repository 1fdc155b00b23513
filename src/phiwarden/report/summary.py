"""Counts shared by every report format."""

from __future__ import annotations

from collections import Counter
from typing import Any

from phiwarden.scan.runner import ScanReport


def summarize(report: ScanReport) -> dict[str, Any]:
    findings = report.findings
    skipped = report.all_skipped()
    tiers = Counter(r.classification.tier for r in report.files if r.classification is not None)
    return {
        "files_scanned": sum(1 for r in report.files if r.skipped is None),
        "files_with_findings": sum(1 for r in report.files if r.findings),
        "files_skipped": len(skipped),
        "skipped_by_reason": dict(Counter(_reason_kind(s.reason) for s in skipped)),
        "bytes_scanned": report.bytes_scanned,
        "findings": len(findings),
        "by_category": dict(sorted(Counter(f.category for f in findings).items())),
        "tiers": {tier: tiers.get(tier, 0) for tier in ("restricted", "internal", "public")},
        "suppressed_by_allowed_paths": sum(r.allowed for r in report.files),
        "suppressed_by_baseline": sum(r.baselined for r in report.files),
        "min_confidence": report.min_confidence,
        "seconds": round(report.elapsed, 3),
    }


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].split(" (", 1)[0]
