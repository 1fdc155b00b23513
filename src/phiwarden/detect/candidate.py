"""A possible finding before overlap resolution, context scoring and suppression."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Candidate:
    start: int  # byte offsets into the UTF-8 text
    end: int
    category: str
    rule: str
    confidence: float
    # Weak evidence (a generic field name, a bare email) counts only inside a patient record.
    needs_record: bool = False
    # Strong evidence makes the text around it a patient record for its weak neighbours.
    anchors_record: bool = False
    # False for detectors that only veto other findings on their span (provider identifiers).
    report: bool = True
    # The category comes from a field name (`fax_number: "…"`), which says more than the value's
    # shape: such a candidate wins over a pattern's on the same span.
    named: bool = False
    # Set for values read from a binary format (DICOM), whose offsets are bytes of the file.
    binary_tag: str = ""
