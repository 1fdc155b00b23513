"""Baselines: the fingerprints of findings a team has accepted, so an old repository can adopt the
scanner and fail only on what is new.

The file holds keyed fingerprints (see `finding.fingerprint`), paths, categories and rules — never
values or previews.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from phiwarden.scan.runner import FileResult

FORMAT = "phiwarden-baseline"
VERSION = 1


class BaselineError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Baseline:
    fingerprints: frozenset[str]

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BaselineError(f"{path}: no such baseline file (create it with --update-baseline)") from None
        except (OSError, ValueError) as exc:
            raise BaselineError(f"{path}: not a readable baseline: {exc}") from None
        if (
            not isinstance(data, dict)
            or data.get("format") != FORMAT
            or not isinstance(data.get("findings"), list)
        ):
            raise BaselineError(f'{path}: not a phiwarden baseline (expected "format": "{FORMAT}")')
        return cls(
            frozenset(str(item.get("fingerprint")) for item in data["findings"] if isinstance(item, dict))
        )

    def apply(self, files: list[FileResult]) -> None:
        """Drop findings already in the baseline, counting them per file."""
        for result in files:
            kept = [f for f in result.findings if f.fingerprint not in self.fingerprints]
            result.baselined += len(result.findings) - len(kept)
            result.findings = kept


def write(path: Path, files: list[FileResult]) -> int:
    entries = sorted(
        (
            {"fingerprint": f.fingerprint, "path": f.path, "category": f.category, "rule": f.rule}
            for result in files
            for f in result.findings
        ),
        key=lambda e: (e["path"] or "", e["fingerprint"]),
    )
    unique = {e["fingerprint"]: e for e in entries}
    document = {"format": FORMAT, "version": VERSION, "findings": list(unique.values())}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return len(unique)
