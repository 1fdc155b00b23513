"""The `[audit]` section: where the audit trail lives and how long it is kept (see `phiwarden.audit`)."""

from __future__ import annotations

from dataclasses import dataclass

from phiwarden.policy.reader import Table

# Six years: the HIPAA documentation retention rule (45 CFR 164.316(b)(2)).
DEFAULT_RETENTION_DAYS = 6 * 366


@dataclass(frozen=True, slots=True)
class AuditSettings:
    store: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    legal_hold: bool = False
    record_scans: bool = False


def parse(table: Table) -> AuditSettings:
    table.only(("store", "retention_days", "legal_hold", "record_scans"))
    return AuditSettings(
        store=table.optional_string("store"),
        retention_days=table.integer("retention_days", DEFAULT_RETENTION_DAYS, minimum=1, maximum=36600),
        legal_hold=table.boolean("legal_hold", False),
        record_scans=table.boolean("record_scans", False),
    )
