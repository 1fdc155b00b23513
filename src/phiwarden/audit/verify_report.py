"""What verification found: problems with the sequence numbers they implicate, and the report.

The first bad sequence number is the smallest sequence that verification cannot prove intact (see
`verify`). Exact evidence pinpoints one event; a signed checkpoint that no longer matches bounds a
range, of which no event is proven intact. Damage to the derived search data (columns, value-hash
index) decides the first bad sequence only when the records themselves verify.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Problems about the derived search data rather than the sealed records.
DERIVED_KINDS = frozenset({"derived", "value-index"})


@dataclass(frozen=True, slots=True)
class Problem:
    # The first sequence implicated; None when no event is (a bad signature, a witness, …).
    seq: int | None
    kind: str
    message: str
    # Set for evidence that covers a range only: something in seq..last changed.
    last: int | None = None

    @property
    def exact(self) -> bool:
        return self.seq is not None and self.last is None


def order(problem: Problem) -> tuple[bool, bool, int]:
    # Evidence about the records by sequence number, then what implicates no event (signatures,
    # witnesses), then the derived search data.
    return problem.kind in DERIVED_KINDS, problem.seq is None, problem.seq or 0


def _priority(problem: Problem) -> tuple[bool, bool, int]:
    # What is kept when there are too many: evidence about the records before derived data, and
    # problems that implicate no event (few, and each says something of its own).
    return problem.kind in DERIVED_KINDS, problem.seq is not None, problem.seq or 0


@dataclass(slots=True)
class VerifyReport:
    log_id: str
    size: int = 0
    first_seq: int = 1
    events_checked: int = 0
    pruned: int = 0
    checkpoints_checked: int = 0
    witness_checkpoints: int = 0
    # The newest checkpoint, from any source, that the log matched.
    latest_checkpoint: int | None = None
    problems: list[Problem] = field(default_factory=list)
    # Problems found beyond those listed.
    omitted: int = 0
    # Why verification could not complete (a witness that cannot be read): not evidence of tampering.
    incomplete: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.incomplete

    def _records(self) -> list[Problem]:
        """Evidence about the sealed records, or about the derived data when nothing else failed."""
        records = [p for p in self.problems if p.kind not in DERIVED_KINDS]
        return [p for p in records or self.problems if p.seq is not None]

    @property
    def pinpointed(self) -> int | None:
        """The first sequence with exact evidence against it."""
        return min((p.seq for p in self._records() if p.exact and p.seq is not None), default=None)

    @property
    def first_bad_range(self) -> tuple[int, int] | None:
        """The range that starts the damage when only a checkpoint (or the head) bounds it."""
        ranges = [(p.seq, p.last) for p in self._records() if p.seq is not None and p.last is not None]
        if not ranges:
            return None
        first = min(ranges)
        pinpointed = self.pinpointed
        return first if pinpointed is None or first[0] < pinpointed else None

    @property
    def first_bad(self) -> int | None:
        """The smallest sequence not proven intact (see the module docstring)."""
        first_range = self.first_bad_range
        return first_range[0] if first_range is not None else self.pinpointed

    @property
    def first_bad_derived(self) -> int | None:
        return min((p.seq for p in self.problems if p.kind in DERIVED_KINDS and p.seq), default=None)

    def summary(self) -> str:
        """One line: OK, what failed first, or why verification is incomplete."""
        if self.ok:
            held = (
                f"{self.events_checked} events verified (sequence {self.first_seq}..{self.size})"
                if self.events_checked
                else "the store holds no events"
            )
            # Checkpoints of pruned events are read but have no events left to match.
            read = f"{self.witness_checkpoints} read from witnesses or given" + (
                " (those of pruned events included)" if self.pruned and self.witness_checkpoints else ""
            )
            return (
                f"OK: {held}, {self.pruned} pruned under signed records, "
                f"{self.checkpoints_checked} checkpoint(s) matched; {read}"
            )
        if not self.problems:
            return "INCOMPLETE: " + "; ".join(self.incomplete)
        first_range, pinpointed = self.first_bad_range, self.pinpointed
        if first_range is not None:
            low, high = first_range
            line = f"FAILED: first bad sequence in {low}..{high}"
            inside = [p.seq for p in self._records() if p.exact and p.seq and low <= p.seq <= high]
            return line + (f" (exact evidence first at event {min(inside)})" if inside else "")
        if pinpointed is not None:
            return f"FAILED: first bad sequence number {pinpointed}"
        return f"FAILED: {self.problems[0].message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "complete": not self.incomplete,
            "log_id": self.log_id,
            "size": self.size,
            "first_sequence": self.first_seq,
            "events_checked": self.events_checked,
            "pruned": self.pruned,
            "checkpoints_checked": self.checkpoints_checked,
            "witness_checkpoints": self.witness_checkpoints,
            "latest_checkpoint": self.latest_checkpoint,
            "first_bad_sequence": self.first_bad,
            "first_bad_range": list(r) if (r := self.first_bad_range) else None,
            "pinpointed_sequence": self.pinpointed,
            "first_bad_derived_sequence": self.first_bad_derived,
            "problems": [
                {"sequence": p.seq, "last_sequence": p.last, "kind": p.kind, "message": p.message}
                for p in self.problems
            ],
            "omitted_problems": self.omitted,
            "incomplete": self.incomplete,
            "warnings": self.warnings,
        }


class Found:
    """Problems of one pass: the `cap` with the smallest sequence numbers, and how many more."""

    __slots__ = ("cap", "items", "more")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: list[Problem] = []
        self.more = 0

    def add(self, problem: Problem) -> None:
        self.items.append(problem)
        if len(self.items) > 4 * self.cap:
            self.trim()

    def trim(self) -> None:
        if len(self.items) > self.cap:
            self.items.sort(key=_priority)
            self.more += len(self.items) - self.cap
            del self.items[self.cap :]
