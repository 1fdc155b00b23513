"""Scan reports as text (for people), JSON (for tools) and SARIF 2.1.0 (for code scanning)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from phiwarden import __version__
from phiwarden.detect.registry import builtin_detectors
from phiwarden.report.summary import summarize
from phiwarden.scan.runner import ScanReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/phiwarden/phiwarden"

_CATEGORY_TEXT = {
    "name": "personal name",
    "address": "street address or place",
    "zip": "ZIP code",
    "date": "date about a person",
    "phone": "phone number",
    "fax": "fax number",
    "email": "email address",
    "ssn": "Social Security number",
    "mrn": "medical record number",
    "health_plan": "health plan beneficiary number",
    "account": "account number",
    "license": "certificate or licence number",
    "vehicle": "vehicle identifier",
    "device": "device identifier",
    "url": "URL with a record identifier",
    "ip": "IP address",
    "biometric": "biometric identifier",
    "photo": "photograph",
    "other_id": "other unique identifier",
    "secret": "credential",
}


def to_json(report: ScanReport) -> str:
    document = {
        "tool": {"name": "phiwarden", "version": __version__},
        "root": report.root,
        "findings": [f.to_dict() for f in report.findings],
        "files": [
            {
                "path": r.path,
                "tier": r.classification.tier if r.classification else None,
                "reasons": list(r.classification.reasons) if r.classification else [],
                "findings": len(r.findings),
                **({"note": r.note} if r.note else {}),
            }
            for r in report.files
            if r.skipped is None
        ],
        "skipped": [{"path": s.display, "reason": s.reason} for s in report.all_skipped()],
        "summary": summarize(report),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def to_text(report: ScanReport, *, show_tiers: bool = False, color: bool = False) -> str:
    lines: list[str] = []
    bold, dim, red, reset = ("\033[1m", "\033[2m", "\033[31m", "\033[0m") if color else ("", "", "", "")
    for result in report.files:
        if result.skipped is not None or not (result.findings or show_tiers):
            continue
        tier = result.classification.tier if result.classification else "?"
        reasons = "; ".join(result.classification.reasons) if result.classification else ""
        lines.append(f"{bold}{result.path}{reset}  [{tier}] {dim}{reasons}{reset}")
        for f in result.findings:
            where = f.binary_tag or f"{f.line}:{f.column}"
            detail = f"{dim}{f.rule} ({f.confidence:.2f}){reset}"
            lines.append(f"  {where:<9} {red}{f.category:<11}{reset} {f.preview:<24} {detail}")
        if result.note:
            lines.append(f"  {dim}note: {result.note}{reset}")
    skipped = report.all_skipped()
    if skipped:
        lines.append("")
        lines.append(f"skipped {len(skipped)} file(s):")
        for item in skipped[:50]:
            lines.append(f"  {item.display}: {item.reason}")
        if len(skipped) > 50:
            lines.append(f"  … and {len(skipped) - 50} more (see --format json)")
    summary = summarize(report)
    categories = ", ".join(f"{n} {c}" for c, n in Counter(f.category for f in report.findings).most_common())
    lines.append("")
    lines.append(
        f"{summary['findings']} finding(s) in {summary['files_with_findings']} "
        f"of {summary['files_scanned']} file(s)"
        + (f" ({categories})" if categories else "")
        + f"; {summary['bytes_scanned'] / 1e6:.1f} MB in {summary['seconds']:.2f}s"
    )
    tiers = summary["tiers"]
    lines.append(
        f"tiers: {tiers['restricted']} restricted, {tiers['internal']} internal, {tiers['public']} public"
    )
    extra = []
    if summary["suppressed_by_baseline"]:
        extra.append(f"{summary['suppressed_by_baseline']} in the baseline")
    if summary["suppressed_by_allowed_paths"]:
        extra.append(f"{summary['suppressed_by_allowed_paths']} in allowed paths")
    if extra:
        lines.append("not reported: " + ", ".join(extra))
    if summary["findings"]:
        lines.append(
            "to fix: replace real-looking values with synthetic ones; to accept a value, add "
            "`phiwarden: allow <category>` on its line or record the file in a baseline (--update-baseline)"
        )
    return "\n".join(lines) + "\n"


def _rules() -> dict[str, dict[str, Any]]:
    detectors, _ = builtin_detectors()
    return {d.id: {"description": d.description, "category": d.category} for d in detectors}


def _severity(category: str) -> str:
    return "9.0" if category in ("ssn", "secret", "mrn", "health_plan") else "7.5"


def to_sarif(report: ScanReport) -> str:
    known = _rules()
    rule_ids = sorted({f.rule for f in report.findings})
    rules = []
    for rule_id in rule_ids:
        category = next(f.category for f in report.findings if f.rule == rule_id)
        description = (
            known.get(rule_id, {}).get("description")
            or f"{_CATEGORY_TEXT.get(category, category)} ({rule_id})"
        )
        rules.append(
            {
                "id": rule_id,
                "name": rule_id.replace(".", "_"),
                "shortDescription": {
                    "text": f"{_CATEGORY_TEXT.get(category, category).capitalize()} in source"
                },
                "fullDescription": {"text": description},
                "help": {
                    "text": (
                        f"A {_CATEGORY_TEXT.get(category, category)} was found. Real patient identifiers and "
                        "credentials must not live in code, fixtures, logs or documents that AI tools and "
                        "collaborators can read. Replace the value with synthetic data; if it is synthetic "
                        f"already, add `phiwarden: allow {category}` on the line or a baseline entry."
                    )
                },
                "defaultConfiguration": {"level": "error"},
                "properties": {
                    "tags": ["security", "phi" if category != "secret" else "secret", category],
                    "security-severity": _severity(category),
                    "precision": "high",
                },
            }
        )
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    results = []
    for f in report.findings:
        region: dict[str, Any]
        if f.binary_tag:
            region = {"byteOffset": f.start, "byteLength": f.end - f.start}
        else:
            region = {
                "startLine": f.line,
                "startColumn": f.column,
                "endLine": f.end_line,
                "endColumn": max(f.end_column, f.column + 1) if f.end_line == f.line else f.end_column,
                "charOffset": f.start,
                "charLength": f.end - f.start,
            }
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": "error" if f.confidence >= 0.8 else "warning",
                "message": {
                    "text": f"{_CATEGORY_TEXT.get(f.category, f.category).capitalize()} {f.preview} "
                    f"(confidence {f.confidence:.2f}){' in ' + f.binary_tag if f.binary_tag else ''}"
                },
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.path or "-", "uriBaseId": "%SRCROOT%"},
                            "region": region,
                        }
                    }
                ],
                "partialFingerprints": {"phiwarden/v1": f.fingerprint},
                "properties": {"category": f.category, "confidence": f.confidence},
            }
        )
    notifications = [
        {
            "level": "warning",
            "message": {"text": f"not scanned: {s.reason}"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": s.display, "uriBaseId": "%SRCROOT%"}}}
            ],
        }
        for s in report.all_skipped()
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "phiwarden",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": "phiwarden/scan/"},
                "originalUriBaseIds": {"%SRCROOT%": {"uri": _root_uri(report.root)}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _root_uri(root: str) -> str:
    from pathlib import Path

    uri = Path(root).resolve().as_uri()
    return uri if uri.endswith("/") else uri + "/"
