"""Detection of PHI and secrets in text: `scan_text` for one text, `Engine` to reuse across many."""

from phiwarden.detect.engine import Engine, engine_for, scan_text
from phiwarden.detect.finding import Finding, mask
from phiwarden.detect.registry import CATEGORIES, PHI_CATEGORIES, Detector

__all__ = ["CATEGORIES", "PHI_CATEGORIES", "Detector", "Engine", "Finding", "engine_for", "mask", "scan_text"]
