"""A finding: where a PHI value or secret is, of what kind, how sure — never the value itself."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value.

    `start`/`end` are 0-based code-point offsets (end exclusive) into the text as given (a file decoded
    as UTF-8 without newline translation); `line`/`column` are 1-based and `end_column` is exclusive.
    For values read from binary files (DICOM), offsets count bytes of the file and `binary_tag` says
    which element held the value.
    """

    path: str | None
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int
    category: str
    rule: str
    confidence: float
    preview: str
    fingerprint: str
    binary_tag: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.binary_tag:
            del data["binary_tag"]
        return data


def mask(category: str, value: str) -> str:
    """A preview that shows the shape of a value but not the value: `J*** S****`, `***-**-6789`."""
    value = value.replace("\n", " ").replace("\r", " ")
    if len(value) > 64:
        value = value[:64]
    if category == "name":
        # Okonkwo_Marisol (a file name) keeps its underscore as a name keeps its space.
        return " ".join(
            "_".join(_keep_first(part) for part in token.split("_")) for token in value.split(" ")
        )
    if category == "email":
        local, _, domain = value.partition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{_keep_first(local)}@{'*' * len(host)}{dot}{tld}"
    if category == "secret":
        visible = 4 if len(value) >= 16 else 0
        return value[:visible] + "*" * min(len(value) - visible, 12)
    if (
        category in ("ssn", "phone", "fax", "account", "health_plan", "mrn")
        and sum(c.isdigit() for c in value) >= 8
    ):
        return _keep_last_digits(value, 4)
    return "".join("*" if ch.isalnum() else ch for ch in value)


def _keep_first(token: str) -> str:
    return token[:1] + "*" * (len(token) - 1) if token else token


def _keep_last_digits(value: str, count: int) -> str:
    out = []
    seen = 0
    for ch in reversed(value):
        if ch.isalnum():
            seen += 1
            out.append(ch if seen <= count and ch.isdigit() else "*")
        else:
            out.append(ch)
    return "".join(reversed(out))


def fingerprint(salt: bytes, category: str, path: str | None, value: str) -> str:
    """Stable id of a value at a path, keyed so that it cannot be reversed without the salt.

    Line numbers are left out so that a baseline survives edits above the value; the salt keeps a
    report's fingerprints from being brute-forced back into SSNs by whoever reads the report.
    """
    message = "\x00".join((category, path or "", value)).encode("utf-8", "surrogatepass")
    return hmac.new(salt, message, hashlib.sha256).hexdigest()[:32]
