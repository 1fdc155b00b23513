"""The derived data a sealed record implies: its search columns and its rows in the value-hash index.

`ledger.prepare` writes both from the event when it is appended. Search, stats and lookup read only
them, so someone who can write the database could hide an event from a search, or a value from a
lookup, by editing them while leaving the hashed record alone. Verification therefore recomputes
them from the stored record and compares.

`search_columns` and `value_keys` read the OCSF object the way `AuditEvent.from_ocsf` and `prepare`
together would, without building the event. Verification's hot loop compares the columns field by
field first (`matches`) and calls `search_columns` only to name what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from phiwarden.audit.event import _STATUS_NAMES
from phiwarden.audit.ledger import categories_column, value_key
from phiwarden.audit.store import SCAN_COLUMNS

# The search columns, in the order of `Prepared.columns`, as `matches` finds them in a scanned row.
SEARCH_COLUMNS = SCAN_COLUMNS[3:]
STATUS_NAMES: dict[int, str] = dict(_STATUS_NAMES)
# Distinct categories columns kept parsed by one verification pass (a real log has a few dozen).
_CATEGORIES_CACHED = 4096


class NotAnEvent(ValueError):
    """A stored record whose event is not one `prepare` could have written."""


class CategoryDetails(dict[str, list[dict[str, Any]] | None]):
    """categories column -> the `discovery_details` list a record with that column holds.

    None for a column `categories_column` could not have written. Comparing the record's list
    with this costs one lookup and one comparison per record instead of building the column.
    """

    def __missing__(self, column: str) -> list[dict[str, Any]] | None:
        if len(self) >= _CATEGORIES_CACHED:
            self.clear()
        details: list[dict[str, Any]] | None
        try:
            items = [item.partition("=") for item in column[1:-1].split(",")] if column != "," else []
            counts = {name: int(count) for name, _, count in items}
            canonical = categories_column(counts) == column
        except (ValueError, TypeError, IndexError):
            canonical = False
        details = [{"count": counts[name], "type": name} for name in sorted(counts)] if canonical else None
        self[column] = details
        return details


def matches(event: dict[str, Any], row: Sequence[Any], details: CategoryDetails) -> bool:
    """Whether the stored search columns of a scanned `row` (store.SCAN_COLUMNS) are the event's.

    The quick test verification runs on every record; False may also mean the event is malformed,
    and `search_columns` then says what differs.
    """
    try:
        actor = event["actor"]
        extra = event["unmapped"]["phiwarden"]
        dst = event.get("dst_endpoint")
        return bool(
            event["time"] == row[3]
            and event["metadata"]["uid"] == row[4]
            and actor["user"]["uid"] == row[5]
            and actor.get("app_name") == row[6]
            and (None if dst is None else dst.get("name") or dst.get("hostname") or dst.get("ip")) == row[7]
            and extra["action"] == row[8]
            and extra["tier"] == row[9]
            and event["data_classification"]["discovery_details"] == details[row[10]]
            and STATUS_NAMES.get(event["status_id"]) == row[11]
            and event["api"]["operation"] == row[12]
        )
    except (KeyError, TypeError, AttributeError):
        return False


def search_columns(event: dict[str, Any]) -> tuple[Any, ...]:
    """The search columns `prepare` writes for this OCSF object; `NotAnEvent` when malformed."""
    try:
        actor = event["actor"]
        extra = event["unmapped"]["phiwarden"]
        dst = event.get("dst_endpoint")
        details = event["data_classification"]["discovery_details"]
        return (
            event["time"],
            event["metadata"]["uid"],
            actor["user"]["uid"],
            actor.get("app_name"),
            None if dst is None else dst.get("name") or dst.get("hostname") or dst.get("ip"),
            extra["action"],
            extra["tier"],
            categories_column({item["type"]: item["count"] for item in details}),
            STATUS_NAMES.get(event["status_id"]),
            event["api"]["operation"],
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        raise NotAnEvent("not an audit event as phiwarden writes it") from None


def value_keys(event: dict[str, Any]) -> set[int]:
    """The value-hash index keys (`ledger.value_key`) of the event's value HMACs."""
    try:
        hmacs = event["unmapped"]["phiwarden"].get("value_hmacs")
        return {value_key(digest) for hashes in hmacs.values() for digest in hashes} if hmacs else set()
    except (KeyError, TypeError, AttributeError, ValueError):
        raise NotAnEvent("not an audit event as phiwarden writes it") from None
