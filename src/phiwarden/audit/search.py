"""What the `search`, `stats` and `export` filters match, in the store and in archive files.

- actor, tool, action, tier: the event's user id, client tool, phiwarden action and tier, exactly;
- destination: the destination's name; an event whose destination has no name, by its host (then
  its IP) — the value the store keeps in its destination column;
- category: a PHI category the event found, by its exact name (`_` is no wildcard);
- since, until: the event's time, since <= time < until (milliseconds).

A search with a limit returns the newest `limit` matches, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from phiwarden.audit.errors import AuditError
from phiwarden.audit.event import describe, is_category
from phiwarden.audit.store import Query


class FilterError(AuditError):
    """A filter that cannot match as given (a category that is no category name)."""


@dataclass(frozen=True, slots=True)
class Filter(Query):
    def __post_init__(self) -> None:
        if self.category is not None and not is_category(self.category):
            raise FilterError(
                "--category takes a category name: a lowercase letter, then up to 31 lowercase letters, "
                f"digits or underscores (ssn, mrn, npi); got {describe(self.category)}"
            )
        if self.limit is not None and self.limit < 1:
            raise FilterError(f"--limit must be at least 1, got {self.limit}")

    def where(self) -> tuple[str, list[Any]]:
        # Query.where, named: a slots dataclass is a new class, which zero-argument super() misses.
        where, params = Query.where(self)
        if self.limit is None:
            return where, params
        # The store lists matches oldest first and cuts at the limit; starting at the sequence of the
        # limit-th newest match makes that the newest `limit` (the whole set when there are fewer).
        newest = (
            "seq >= COALESCE((SELECT seq FROM audit_events"
            f"{where} ORDER BY seq DESC LIMIT 1 OFFSET {int(self.limit) - 1}), 0)"
        )
        return (f"{where} AND {newest}" if where else f" WHERE {newest}"), params + params

    @property
    def unlimited(self) -> Filter:
        return replace(self, limit=None)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether an OCSF event object (as stored) passes the filter, as `where` selects in the store."""
        extra = event.get("unmapped", {}).get("phiwarden", {})
        actor = event.get("actor", {})
        dst = event.get("dst_endpoint")
        checks = (
            (self.actor, actor.get("user", {}).get("uid")),
            (self.tool, actor.get("app_name")),
            (
                self.destination,
                None if dst is None else dst.get("name") or dst.get("hostname") or dst.get("ip"),
            ),
            (self.action, extra.get("action")),
            (self.tier, extra.get("tier")),
        )
        if any(wanted is not None and wanted != found for wanted, found in checks):
            return False
        found = event.get("data_classification", {}).get("discovery_details", [])
        if self.category is not None and self.category not in {d.get("type") for d in found}:
            return False
        moment = event.get("time", 0)
        return (self.since_ms is None or moment >= self.since_ms) and (
            self.until_ms is None or moment < self.until_ms
        )
