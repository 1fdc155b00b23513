"""PHI in DICOM headers: the patient module and the dates that identify a visit.

Only the header is read (never pixel data). Each value is checked like any other value of its
category, and reported with its byte offset in the file and the tag that held it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from phiwarden.detect.structure.dicom_json import phi_tags
from phiwarden.detect.values import CHECKS


@dataclass(frozen=True, slots=True)
class DicomValue:
    tag: str
    category: str
    start: int  # byte offsets in the file
    end: int
    value: str


class DicomError(ValueError):
    """A file that announces DICOM but whose header cannot be read."""


def read_header(source: Path | BinaryIO) -> Iterator[DicomValue]:
    """PHI-bearing header values of a DICOM file (a path, or its bytes as a binary stream)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # pydicom warns on stderr about oddities it reads through (implicit VR where explicit was
        # announced): the scan reports what it found, and a report is not to be interleaved with that.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(source, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise DicomError(f"unreadable DICOM header: {exc}") from None
    if len(dataset) == 0:
        # pydicom reads a truncated header without complaint; nothing read is not "nothing found".
        raise DicomError("unreadable DICOM header: no data elements")
    for hex_tag, (keyword, verdict) in phi_tags().items():
        tag = int(hex_tag, 16)
        try:
            raw = dataset.get_item(tag)
        except (KeyError, ValueError):
            continue
        if raw is None or not hasattr(raw, "value_tell") or raw.value is None:
            continue
        data = raw.value if isinstance(raw.value, bytes) else str(raw.value).encode("latin-1", "replace")
        text = data.decode("latin-1").rstrip(" \x00")
        if not text:
            continue
        # Multi-valued elements separate values with a backslash; check each on its own.
        offset = 0
        for part in text.split("\\"):
            span = CHECKS[verdict.category](part, True, verdict.kind)
            if span is not None:
                start = raw.value_tell + offset + span.start
                yield DicomValue(
                    tag=f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword}",
                    category=verdict.category,
                    start=start,
                    end=start + (span.end - span.start),
                    value=part[span.start : span.end],
                )
            offset += len(part) + 1
