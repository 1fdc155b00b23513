"""Held-out styles: synthetic records in formats the detectors were not tuned on."""

from __future__ import annotations

from collections import defaultdict

import pytest

from phiwarden.detect import scan_text
from tests.synthetic import CLEAN, STYLES, samples


@pytest.fixture(scope="module")
def recall_by_style() -> dict[str, float]:
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sample in samples(len(STYLES) * 8):
        findings = scan_text(sample.text)
        for start, end, _ in sample.truth:
            hits[sample.style][0] += any(f.start < end and start < f.end for f in findings)
            hits[sample.style][1] += 1
    return {style: found / total for style, (found, total) in hits.items()}


def test_recall_in_every_style(recall_by_style: dict[str, float]) -> None:
    weak = {style: round(r, 3) for style, r in recall_by_style.items() if r < 0.9}
    assert not weak, weak
    assert sum(recall_by_style.values()) / len(recall_by_style) >= 0.97


def test_no_false_positives_in_clean_code() -> None:
    noisy = {text[:40]: [(f.category, text[f.start : f.end]) for f in scan_text(text)] for text in CLEAN}
    assert {k: v for k, v in noisy.items() if v} == {}


def test_no_findings_outside_planted_values() -> None:
    extra = []
    for sample in samples(len(STYLES) * 4, seed=11):
        for f in scan_text(sample.text):
            if not any(f.start < end and start < f.end for start, end, _ in sample.truth):
                extra.append((sample.style, f.category, sample.text[f.start : f.end]))
    assert extra == []
